#ifndef GENWORKER_GW_PROCESS_H
#define GENWORKER_GW_PROCESS_H

#include <spawn.h>
#include <sys/types.h>

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are re-parented to us.
int gw_process_set_child_subreaper(void);

/// POSIX_SPAWN_SETSID (a GNU extension Swift's Glibc module does not show): the
/// child starts a new session and process group.
short gw_process_spawn_setsid_flag(void);

/// pidfd_open(2): a descriptor that poll() reports readable when `pid` exits.
/// Returns -1 (errno set) on kernels before 5.3.
int gw_process_pidfd_open(pid_t pid);

/// posix_spawn_file_actions_addchdir_np (GNU): the child starts in `path`.
int gw_process_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// The wait-status macros (WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG), which are
/// macros Swift cannot call.
int gw_process_exited(int status);
int gw_process_exit_status(int status);
int gw_process_signaled(int status);
int gw_process_term_signal(int status);

/// malloc_trim(0): gives the heap's free pages back to the system (glibc).
void gw_process_release_free_heap(void);

#endif
