#ifndef GENWORKER_GW_SHIM_H
#define GENWORKER_GW_SHIM_H

#include <amqp.h>

/// Logs in with SASL PLAIN and client properties that advertise the capabilities
/// genworker relies on: consumer_cancel_notify, connection.blocked,
/// publisher_confirms, basic.nack and authentication_failure_close.
/// amqp_login_with_properties is variadic, which Swift cannot call.
amqp_rpc_reply_t gw_amqp_login(amqp_connection_state_t state, const char *vhost,
                               int channel_max, int frame_max, int heartbeat,
                               const char *user, const char *password,
                               const char *connection_name);

/// Bounds how long a send may block (SO_SNDTIMEO): rabbitmq-c 0.11 can block
/// forever in amqp_basic_publish on a dead peer or a full socket.
int gw_socket_set_send_timeout(int fd, long milliseconds);

#endif
