#ifndef GENWORKER_CRABBITMQ_SHIM_H
#define GENWORKER_CRABBITMQ_SHIM_H
// rabbitmq-c 0.11 installs its headers without the rabbitmq-c/ prefix.
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#endif
