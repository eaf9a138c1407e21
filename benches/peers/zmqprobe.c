// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * zmqprobe: the peer a user would weigh against TIPC groups, ZeroMQ over
 * TCP, measured by `cargo bench --bench group` in the same namespaces, on
 * the same CPUs and in the same sitting as the stack and the raw limit.
 *
 *   zmqprobe rep  -e ENDPOINT
 *   zmqprobe req  -e ENDPOINT -s SIZE -n N
 *   zmqprobe pull -e ENDPOINT -n N
 *   zmqprobe push -e ENDPOINT -s SIZE -n N
 *   zmqprobe sub  -e ENDPOINT -n N
 *   zmqprobe pub  -e ENDPOINT -s SIZE -n N -k SUBSCRIBERS
 *
 * High-water marks are unbounded on every socket (ZMQ_SNDHWM and
 * ZMQ_RCVHWM 0), so ZeroMQ queues instead of dropping: its lossless case,
 * the one comparable with TIPC groups, which never drop. Every mode
 * prints one line of key=value words on stdout:
 *
 *   cpu_s      user + system CPU seconds of this process (all its threads)
 *   t_first_ns CLOCK_MONOTONIC of the first message sent or received
 *   t_last_ns  CLOCK_MONOTONIC of the last one (the clock is the same in
 *              every network namespace, so a sender's first and the
 *              receivers' last give the end-to-end time)
 *   median_us  (req) median round trip of N timed requests after N/10
 *   got        (pull, sub) messages received
 *
 * A request of 0 bytes ends `rep`. `pub` binds an XPUB with
 * ZMQ_XPUB_VERBOSE and waits for SUBSCRIBERS subscriptions before it
 * sends, so no subscriber misses the start; then it sends N messages and
 * a 0-byte one that ends each `sub`.
 *
 * Build: gcc -O2 -Wall -Wextra -o zmqprobe zmqprobe.c -lzmq
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zmq.h>

static void die(const char *what)
{
	fprintf(stderr, "zmqprobe: %s: %s\n", what, zmq_strerror(zmq_errno()));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
	       (double)u.ru_stime.tv_usec / 1e6;
}

static void *open_socket(void *ctx, int type, const char *ep, int bind)
{
	void *s = zmq_socket(ctx, type);
	int zero = 0, one = 1;
	if (!s)
		die("zmq_socket");
	if (zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero) || zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero))
		die("high-water marks");
	if (type == ZMQ_XPUB && zmq_setsockopt(s, ZMQ_XPUB_VERBOSE, &one, sizeof one))
		die("ZMQ_XPUB_VERBOSE");
	if (type == ZMQ_SUB && zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0))
		die("ZMQ_SUBSCRIBE");
	if (bind ? zmq_bind(s, ep) : zmq_connect(s, ep))
		die(bind ? "zmq_bind" : "zmq_connect");
	return s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *ep = NULL;
	long size = 64, n = 10000, k = 1;
	int c;
	if (argc < 2) {
		fprintf(stderr, "usage: zmqprobe rep|req|pull|push|sub|pub -e ENDPOINT [-s SIZE] [-n N] [-k SUBS]\n");
		return 2;
	}
	const char *mode = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "e:s:n:k:")) != -1) {
		switch (c) {
		case 'e': ep = optarg; break;
		case 's': size = strtol(optarg, NULL, 10); break;
		case 'n': n = strtol(optarg, NULL, 10); break;
		case 'k': k = strtol(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (!ep || size < 1 || size > (1 << 20) || n < 1 || k < 1) {
		fprintf(stderr, "zmqprobe: bad arguments\n");
		return 2;
	}
	char *buf = calloc(1, (size_t)size + 1);
	if (!buf)
		return 1;
	void *ctx = zmq_ctx_new();
	uint64_t first = 0, last = 0;
	char line[256] = "";
	long got = 0;

	if (!strcmp(mode, "rep")) {
		void *s = open_socket(ctx, ZMQ_REP, ep, 1);
		for (;;) {
			int r = zmq_recv(s, buf, (size_t)size, 0);
			if (r < 0)
				die("zmq_recv");
			if (zmq_send(s, buf, (size_t)r, 0) < 0)
				die("zmq_send");
			if (r == 0)
				break;
		}
		zmq_close(s);
		snprintf(line, sizeof line, "mode=rep");
	} else if (!strcmp(mode, "req")) {
		void *s = open_socket(ctx, ZMQ_REQ, ep, 0);
		long warm = n / 10;
		double *rtt = calloc((size_t)n, sizeof *rtt);
		if (!rtt)
			return 1;
		for (long i = 0; i < warm + n; i++) {
			uint64_t t = now_ns();
			if (zmq_send(s, buf, (size_t)size, 0) < 0 || zmq_recv(s, buf, (size_t)size, 0) < 0)
				die("request");
			if (i >= warm)
				rtt[i - warm] = (double)(now_ns() - t) / 1e3;
		}
		if (zmq_send(s, buf, 0, 0) < 0 || zmq_recv(s, buf, (size_t)size, 0) < 0)
			die("end");
		qsort(rtt, (size_t)n, sizeof *rtt, cmp_double);
		zmq_close(s);
		snprintf(line, sizeof line, "mode=req median_us=%.3f n=%ld", rtt[n / 2], n);
	} else if (!strcmp(mode, "pull") || !strcmp(mode, "sub")) {
		int sub = !strcmp(mode, "sub");
		void *s = open_socket(ctx, sub ? ZMQ_SUB : ZMQ_PULL, ep, !sub);
		while (got < n) {
			int r = zmq_recv(s, buf, (size_t)size, 0);
			if (r < 0)
				die("zmq_recv");
			if (r == 0)
				break;
			last = now_ns();
			if (!got)
				first = last;
			got++;
		}
		zmq_close(s);
		snprintf(line, sizeof line, "mode=%s got=%ld t_first_ns=%llu t_last_ns=%llu", mode, got,
			 (unsigned long long)first, (unsigned long long)last);
	} else if (!strcmp(mode, "push") || !strcmp(mode, "pub")) {
		int pub = !strcmp(mode, "pub");
		void *s = open_socket(ctx, pub ? ZMQ_XPUB : ZMQ_PUSH, ep, pub);
		/* each subscriber's subscription arrives as one message */
		for (long i = 0; pub && i < k; i++)
			if (zmq_recv(s, buf, (size_t)size, 0) < 0)
				die("subscription");
		first = now_ns();
		for (long i = 0; i < n; i++)
			if (zmq_send(s, buf, (size_t)size, 0) < 0)
				die("zmq_send");
		if (pub && zmq_send(s, buf, 0, 0) < 0)
			die("end");
		last = now_ns();
		/* the default linger waits until every queued message is out */
		zmq_close(s);
		snprintf(line, sizeof line, "mode=%s t_first_ns=%llu t_last_ns=%llu", mode, (unsigned long long)first,
			 (unsigned long long)last);
	} else {
		fprintf(stderr, "zmqprobe: unknown mode %s\n", mode);
		return 2;
	}
	/* after the context ends: its IO thread has sent everything */
	zmq_ctx_term(ctx);
	printf("%s cpu_s=%.3f\n", line, cpu_s());
	free(buf);
	return 0;
}
