/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * kpeer-runner: the in-VM half of `kpeer exec`.
 *
 * Started by /init as PID 1 with the path of the control folder, a 9p
 * share of a folder on the host. The host talks to it with files only:
 *
 *   jobs/ID.cmd      a shell script to run (the host renames it into place)
 *   jobs/ID.in       optional standard input for job ID
 *   jobs/ID.kill     request: SIGKILL the process group of job ID
 *   poweroff         request: stop every job and power the VM off
 *
 * and it answers with
 *
 *   ready            written once at start (uptime in seconds)
 *   jobs/ID.out      stdout of the job, jobs/ID.err its stderr
 *   jobs/ID.rc       exit status (128+N when killed by signal N); renamed
 *                    into place, so its presence means the job is over
 *
 * Each job runs as `/bin/sh jobs/ID.run` (the .cmd file renamed so it is
 * started once) in a session and process group of its own, cwd /tmp.
 * Any number of jobs may run at once. Being PID 1, the runner also reaps
 * orphans, e.g. commands a job left running in the background.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The folder is scanned every FAST_MS while jobs run or requests came in
 * lately, and less often after a quiet spell, to keep an idle VM idle
 * (it runs under TCG on hosts without KVM). */
#define FAST_MS 15
#define SLOW_MS 60
#define QUIET_SCANS 200
#define ID_MAX 120
#define DIR_MAX 256	/* control folder path, at most */
#define PATH_BUF 512

struct job {
	pid_t pid;
	char id[ID_MAX + 1];
	struct job *next;
};

static struct job *running;
static char jobdir[DIR_MAX + 8];
static char ctldir[DIR_MAX];

static void logmsg(const char *fmt, const char *arg)
{
	fprintf(stderr, "kpeer-runner: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
}

/* jobdir/ID.EXT into buf */
static void job_path(char *buf, size_t cap, const char *id, const char *ext)
{
	snprintf(buf, cap, "%s/%s.%s", jobdir, id, ext);
}

/* Writes text to path through a temporary name and rename(), so a reader
 * never sees a half-written file. */
static void publish(const char *path, const char *text)
{
	char tmp[PATH_BUF + 8];
	int fd;
	ssize_t len = (ssize_t)strlen(text);

	snprintf(tmp, sizeof(tmp), "%s.part", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		logmsg("cannot create %s", tmp);
		return;
	}
	if (write(fd, text, (size_t)len) != len)
		logmsg("short write to %s", tmp);
	close(fd);
	if (rename(tmp, path) != 0)
		logmsg("cannot rename %s", tmp);
}

static void publish_status(const char *id, int code)
{
	char path[PATH_BUF], text[32];

	job_path(path, sizeof(path), id, "rc");
	snprintf(text, sizeof(text), "%d\n", code);
	publish(path, text);
}

static struct job *find_job(const char *id)
{
	for (struct job *j = running; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

/* In the child: wire up the files and become /bin/sh. Never returns. */
static void become_job(const char *id, const char *script)
{
	char in[PATH_BUF], out[PATH_BUF], err[PATH_BUF];
	int fd_in, fd_out, fd_err;
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setsid();

	job_path(in, sizeof(in), id, "in");
	job_path(out, sizeof(out), id, "out");
	job_path(err, sizeof(err), id, "err");
	fd_in = open(in, O_RDONLY);
	if (fd_in < 0)
		fd_in = open("/dev/null", O_RDONLY);
	fd_out = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	fd_err = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd_in < 0 || fd_out < 0 || fd_err < 0)
		_exit(126);
	if (dup2(fd_in, 0) < 0 || dup2(fd_out, 1) < 0 || dup2(fd_err, 2) < 0)
		_exit(126);
	for (int fd = 3; fd < 256; fd++)
		close(fd);
	if (chdir("/tmp") != 0 && chdir("/") != 0)
		_exit(126);
	execl("/bin/sh", "sh", script, (char *)NULL);
	_exit(127);
}

static void start_job(const char *id)
{
	char cmd[PATH_BUF], run[PATH_BUF];
	struct job *j;
	pid_t pid;

	job_path(cmd, sizeof(cmd), id, "cmd");
	job_path(run, sizeof(run), id, "run");
	if (rename(cmd, run) != 0)
		return; /* gone meanwhile (the host withdrew it) */
	j = calloc(1, sizeof(*j));
	if (!j) {
		publish_status(id, 255);
		return;
	}
	pid = fork();
	if (pid < 0) {
		free(j);
		publish_status(id, 255);
		return;
	}
	if (pid == 0)
		become_job(id, run);
	j->pid = pid;
	snprintf(j->id, sizeof(j->id), "%s", id);
	j->next = running;
	running = j;
}

static void kill_job(const char *id)
{
	char req[PATH_BUF];
	struct job *j = find_job(id);

	job_path(req, sizeof(req), id, "kill");
	unlink(req);
	if (j)
		kill(-j->pid, SIGKILL);
}

/* Collects every dead child; a job's end is published. */
static void reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct job **link = &running;

		while (*link && (*link)->pid != pid)
			link = &(*link)->next;
		if (!*link)
			continue; /* an orphan adopted by PID 1 */
		struct job *j = *link;
		int code = WIFEXITED(status) ? WEXITSTATUS(status)
		           : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
		publish_status(j->id, code);
		*link = j->next;
		free(j);
	}
}

/* If name is "ID.ext" with a plausible ID, copies ID and returns 1. */
static int split_name(const char *name, const char *ext, char *id)
{
	size_t n = strlen(name), e = strlen(ext);

	if (name[0] == '.' || n <= e + 1 || n - e - 1 > ID_MAX)
		return 0;
	if (name[n - e - 1] != '.' || strcmp(name + n - e, ext) != 0)
		return 0;
	memcpy(id, name, n - e - 1);
	id[n - e - 1] = '\0';
	return 1;
}

/* Returns the number of requests found. */
static int scan(void)
{
	DIR *d = opendir(jobdir);
	struct dirent *de;
	char id[ID_MAX + 1];
	int found = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (split_name(de->d_name, "cmd", id)) {
			start_job(id);
			found++;
		} else if (split_name(de->d_name, "kill", id)) {
			kill_job(id);
			found++;
		}
	}
	closedir(d);
	return found;
}

static void power_off(void)
{
	for (struct job *j = running; j; j = j->next)
		kill(-j->pid, SIGKILL);
	kill(-1, SIGKILL);
	sync();
	reboot(RB_POWER_OFF);
	_exit(0); /* PID 1 exiting panics the kernel; panic=-1 ends qemu too */
}

int main(int argc, char **argv)
{
	char path[PATH_BUF], text[64];
	FILE *up;
	int quiet = 0;
	double uptime = 0;

	if (argc != 2 || strlen(argv[1]) >= DIR_MAX) {
		fprintf(stderr, "usage: kpeer-runner CONTROL-FOLDER\n");
		return 2;
	}
	snprintf(ctldir, sizeof(ctldir), "%s", argv[1]);
	snprintf(jobdir, sizeof(jobdir), "%s/jobs", ctldir);
	mkdir(jobdir, 0755);
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	signal(SIGPIPE, SIG_IGN);

	up = fopen("/proc/uptime", "r");
	if (up) {
		if (fscanf(up, "%lf", &uptime) != 1)
			uptime = 0;
		fclose(up);
	}
	snprintf(path, sizeof(path), "%s/ready", ctldir);
	snprintf(text, sizeof(text), "%.2f\n", uptime);
	publish(path, text);

	snprintf(path, sizeof(path), "%s/poweroff", ctldir);
	for (;;) {
		reap();
		if (access(path, F_OK) == 0)
			power_off();
		if (scan() > 0 || running)
			quiet = 0;
		else if (quiet < QUIET_SCANS)
			quiet++;
		struct timespec pause = { 0, (quiet < QUIET_SCANS ? FAST_MS : SLOW_MS) * 1000000L };
		nanosleep(&pause, NULL);
	}
}
