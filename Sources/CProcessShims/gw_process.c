#define _GNU_SOURCE
#include "gw_process.h"

#include <malloc.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int gw_process_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

short gw_process_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }

int gw_process_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  return -1;
#endif
}

int gw_process_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
  return posix_spawn_file_actions_addchdir_np(actions, path);
}

int gw_process_exited(int status) { return WIFEXITED(status); }
int gw_process_exit_status(int status) { return WEXITSTATUS(status); }
int gw_process_signaled(int status) { return WIFSIGNALED(status); }
int gw_process_term_signal(int status) { return WTERMSIG(status); }

void gw_process_release_free_heap(void) { malloc_trim(0); }
