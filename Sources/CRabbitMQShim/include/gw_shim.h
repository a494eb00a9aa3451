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

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are re-parented to us.
int gw_set_child_subreaper(void);

/// prctl(PR_SET_PDEATHSIG, sig): the caller gets `sig` when its parent thread dies.
int gw_set_parent_death_signal(int sig);


#include <spawn.h>
#include <sys/types.h>

/// POSIX_SPAWN_SETSID (a GNU extension Swift's Glibc module does not show): the
/// child starts a new session and process group.
short gw_posix_spawn_setsid_flag(void);

/// pidfd_open(2): a descriptor that poll() reports readable when `pid` exits.
/// Returns -1 (errno set) on kernels before 5.3.
int gw_pidfd_open(pid_t pid);

/// posix_spawn_file_actions_addchdir_np (GNU): the child starts in `path`.
int gw_posix_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);

#endif
