// genworker-watchdog: started by each worker with a pipe on stdin that only the worker
// holds. When the worker dies, even by SIGKILL, the pipe reaches EOF and the watchdog
// kills every process whose environment carries the worker's marker
// (GENWORKER_OWNER=<token>): the generators and all their descendants, whatever
// session they moved to. The worker also sends deadlines (8 bytes, little-endian
// CLOCK_MONOTONIC milliseconds; 0 = none): the end of its runs' leases. If one passes
// without a newer one, the worker is frozen and the watchdog kills the marked processes,
// so no run outlives its lease. Tiny on purpose: it idles in poll(2).
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static int holds_marker(pid_t pid, const char *marker) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  size_t len = strlen(marker);
  for (size_t i = 0; i < n;) {
    size_t end = i;
    while (end < n && buf[end] != '\0') end++;
    if (end - i == len && memcmp(buf + i, marker, len) == 0) return 1;
    i = end + 1;
  }
  return 0;
}

static int kill_marked(const char *marker) {
  int killed = 0;
  DIR *proc = opendir("/proc");
  if (!proc) return 0;
  struct dirent *entry;
  pid_t me = getpid();
  while ((entry = readdir(proc)) != NULL) {
    char *end;
    long pid = strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 1 || pid == me) continue;
    if (holds_marker((pid_t)pid, marker) && kill((pid_t)pid, SIGKILL) == 0) killed++;
  }
  closedir(proc);
  return killed;
}

// Kill until nothing marked is left (children may fork meanwhile).
static void sweep(const char *marker) {
  for (int round = 0; round < 50; round++) {
    if (kill_marked(marker) == 0 && round > 0) break;
    usleep(20000);
  }
}

static uint64_t monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: genworker-watchdog OWNER-TOKEN (stdin: a pipe from the worker)\n");
    return 2;
  }
  char marker[512];
  snprintf(marker, sizeof marker, "GENWORKER_OWNER=%s", argv[1]);
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  uint64_t deadline = 0;
  for (;;) {
    int timeout = -1;
    if (deadline) {
      uint64_t now = monotonic_ms();
      timeout = deadline > now ? (int)(deadline - now < 60000 ? deadline - now : 60000) : 0;
    }
    struct pollfd fd = {.fd = 0, .events = POLLIN};
    int ready = poll(&fd, 1, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (ready == 0) {
      if (deadline && monotonic_ms() >= deadline) {
        fprintf(stderr, "genworker-watchdog: the worker's lease deadline passed without renewal; killing its generators\n");
        sweep(marker);
        deadline = 0;
      }
      continue;
    }
    uint64_t value;
    ssize_t n = read(0, &value, sizeof value);
    if (n <= 0) break;  // the worker is gone
    if (n == sizeof value) deadline = value;
  }
  sweep(marker);
  return 0;
}
