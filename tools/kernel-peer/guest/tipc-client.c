/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * tipc-client: runs a TIPC scenario on the Linux kernel's AF_TIPC sockets.
 *
 * It speaks the step language of the project's examples/group_member.rs
 * and prints the same lines, so one scenario can run against a kernel
 * node and against tipc-rs and the outputs compare line by line. On top of
 * that it knows connection steps (listen, accept, connect, csend, close)
 * for SOCK_SEQPACKET and SOCK_STREAM. `tipc-client -h` lists everything.
 *
 * All steps are checked before the first one runs: a malformed step or
 * option ends the program with status 2 and nothing done. Otherwise the
 * steps run in order on one socket (plus the accepted connection, if any),
 * stopping at the first that fails; the last line is DONE status=ok|fail
 * and the exit status 0 or 1.
 *
 * Build: gcc -static -O2 -Wall -Wextra -o tipc-client tipc-client.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/tipc.h>

#define PATTERN "0123456789abcdefghijklmnopqrstuvwxyz"
#define PATTERN_LEN (sizeof(PATTERN) - 1)
#define MAX_PAYLOAD TIPC_MAX_USER_MSG_SIZE
#define SHOW_MAX 200             /* payload bytes shown in a RECV line */
#define DEFAULT_WAIT_MS 10000
#define MAX_MEMBERS 4096

/* ---------------------------------------------------------------- steps */

enum op {
	OP_JOIN, OP_LEAVE, OP_WAIT_MEMBERS, OP_BCAST, OP_MCAST, OP_ANYCAST,
	OP_UNICAST, OP_UNICAST_MEMBER, OP_BIND, OP_SEND, OP_SEND_RANGE,
	OP_SEND_PORT, OP_SELF, OP_RECV, OP_RECV_N, OP_ECHO, OP_SLEEP, OP_COUNT,
	OP_LISTEN, OP_ACCEPT, OP_CONNECT, OP_CSEND, OP_CLOSE, OP_SINK,
	OP_SUBSCRIBE, OP_EVENTS,
};

/* Argument letters: n number, a node address, t text (the rest of the
 * step, colons included, may be empty). Letters after '[' are optional.
 * `conn` marks steps that need -t seqpacket or -t stream, `rdm` those
 * that need -t rdm. */
struct step_kind {
	const char *name;
	enum op op;
	const char *args;
	const char *usage;
	const char *help;
	int conn, rdm;
};

static const struct step_kind kinds[] = {
	{ "join", OP_JOIN, "nn", "join:TYPE:INST",
	  "join group TYPE as member INST (TIPC_GROUP_JOIN), print JOIN and SELF", 0, 1 },
	{ "leave", OP_LEAVE, "", "leave", "leave the group (TIPC_GROUP_LEAVE)", 0, 1 },
	{ "wait-members", OP_WAIT_MEMBERS, "n[n", "wait-members:N[:MS]",
	  "receive until N other members are known (needs -e; default 10000 ms)", 0, 1 },
	{ "bcast", OP_BCAST, "t", "bcast:TEXT", "group broadcast", 0, 1 },
	{ "mcast", OP_MCAST, "nt", "mcast:INST:TEXT", "group multicast to the members with instance INST", 0, 1 },
	{ "anycast", OP_ANYCAST, "nt", "anycast:INST:TEXT", "group anycast to one member with instance INST", 0, 1 },
	{ "unicast", OP_UNICAST, "ant", "unicast:NODE:PORT:TEXT", "send to the socket NODE:PORT", 0, 1 },
	{ "unicast-member", OP_UNICAST_MEMBER, "nt", "unicast-member:INST:TEXT",
	  "group unicast to member INST (known from its JOINED event)", 0, 1 },
	{ "bind", OP_BIND, "nn[n", "bind:TYPE:LOWER[:UPPER]", "publish service range TYPE:LOWER:UPPER", 0, 0 },
	{ "send", OP_SEND, "nnt", "send:TYPE:INST:TEXT", "send to service TYPE:INST", 0, 0 },
	{ "send-range", OP_SEND_RANGE, "nnnt", "send-range:TYPE:LO:HI:TEXT",
	  "multicast to every socket bound in TYPE:LO:HI", 0, 1 },
	{ "send-port", OP_SEND_PORT, "ant", "send-port:NODE:PORT:TEXT", "send to the socket NODE:PORT", 0, 0 },
	{ "self", OP_SELF, "", "self", "print this socket's address (SELF)", 0, 0 },
	{ "recv", OP_RECV, "n", "recv:MS", "print what arrives during MS milliseconds", 0, 0 },
	{ "recv-n", OP_RECV_N, "n[n", "recv-n:N[:MS]",
	  "receive until N data messages arrived (fails after MS, default 10000)", 0, 0 },
	{ "echo", OP_ECHO, "n", "echo:MS", "like recv, and send each data message back to its sender", 0, 0 },
	{ "sleep", OP_SLEEP, "n", "sleep:MS", "pause", 0, 0 },
	{ "count", OP_COUNT, "n", "count:N", "later send steps send N messages each", 0, 0 },
	{ "listen", OP_LISTEN, "", "listen", "listen for connections (bind first)", 1, 0 },
	{ "accept", OP_ACCEPT, "[n", "accept[:MS]",
	  "accept one connection (default 10000 ms); later steps use it", 1, 0 },
	{ "connect", OP_CONNECT, "nn", "connect:TYPE:INST", "connect to service TYPE:INST", 1, 0 },
	{ "csend", OP_CSEND, "t", "csend:TEXT", "send on the connection", 1, 0 },
	{ "sink", OP_SINK, "n[n", "sink:BYTES[:MS]",
	  "read BYTES from the connection and print their length and FNV-1a hash (SINK)", 1, 0 },
	{ "close", OP_CLOSE, "", "close",
	  "close the connection (or else the socket; a new one is made when needed)", 1, 0 },
	{ "subscribe", OP_SUBSCRIBE, "nnnn[n", "subscribe:TYPE:LO:HI:FILTER[:MS]",
	  "subscribe to TYPE:LO:HI at the topology server (FILTER 1 ports, 2 service; MS timeout, "
	  "default none): SUBSCRIBED sub=N", 0, 0 },
	{ "events", OP_EVENTS, "n", "events:MS",
	  "print the subscriptions' events arriving during MS milliseconds (TOPO sub=N event=...)", 0, 0 },
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

struct step {
	const struct step_kind *kind;
	const char *source;       /* the step as given */
	uint32_t num[5];          /* numbers and node addresses, in order */
	int given;                /* how many of them were given */
	const char *text;         /* TEXT, "" when absent */
};

/* ---------------------------------------------------------------- state */

static struct {
	int sock_type;
	int scope;
	int group_flags;
	int importance;       /* -1: kernel default */
	int mcast_method;     /* 0 kernel's choice, else the setsockopt name */
	int returnable;
	int hex;
	int stamps;
} opt = { SOCK_RDM, TIPC_CLUSTER_SCOPE, 0, -1, 0, 0, 0, 0 };

struct member {
	uint32_t instance, node, port;
};

static struct {
	int sock;             /* the socket of -t's type, -1 until needed */
	int conn;             /* connected socket (== sock after connect), or -1 */
	int conn_over;        /* the peer closed the connection */
	struct tipc_socket_addr peer;
	int joined;
	uint32_t group_type;
	struct tipc_socket_addr self;
	struct member members[MAX_MEMBERS];
	int nmembers;
	unsigned long count;
	unsigned long data_seen;
	int topsrv;           /* connection to the topology server, or -1 */
	uint32_t nsubs;       /* subscriptions made, numbered from 1 */
	struct timespec start;
} st = { .sock = -1, .conn = -1, .count = 1, .topsrv = -1 };

/* one byte more than TIPC carries, so that the refusal can be tried */
static unsigned char payload[MAX_PAYLOAD + 1];
static unsigned char inbuf[MAX_PAYLOAD + 1];
static unsigned char ctlbuf[CMSG_SPACE(MAX_PAYLOAD) + CMSG_SPACE(64) * 4];

/* ---------------------------------------------------------------- output */

/* errno as "<strerror text> (<errno name>)", e.g. "Permission denied
 * (EACCES)": the name is what the conformance test compares. */
static const char *err_text(int e)
{
	static char buf[160];
	const char *name = strerrorname_np(e);

	snprintf(buf, sizeof(buf), "%s (%s)", strerror(e), name ? name : "?");
	return buf;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;

	if (opt.stamps) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		printf("t=%.3f ", (double)(now.tv_sec - st.start.tv_sec) +
		       (double)(now.tv_nsec - st.start.tv_nsec) / 1e9);
	}
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tipc-client [OPTION...] STEP...\n"
		"Runs the steps in order on one AF_TIPC socket of the kernel and prints a\n"
		"line per event, as tipc-rs' examples/group_member does.\n"
		"\n"
		"options:\n"
		"  -t rdm|seqpacket|stream  socket type (default rdm; groups need rdm)\n"
		"  -s cluster|node          scope of join and bind (default cluster)\n"
		"  -l                       group loopback: get own broadcasts/multicasts\n"
		"  -e                       group member events (JOINED/LEFT)\n"
		"  -i 0..3                  message importance\n"
		"  -m broadcast|replicast   multicast method (default: the kernel picks)\n"
		"  -r                       returnable: undeliverable messages come back\n"
		"                           as REJECTED (RDM drops them by default)\n"
		"  -x                       show payloads in hex\n"
		"  -T                       start lines with t=SECONDS since start\n"
		"  -h                       this help\n"
		"\n"
		"steps:\n");
	for (size_t k = 0; k < NKINDS; k++) {
		const char *group = k == 0 ? "group" : kinds[k].op == OP_BIND ? "plain"
			: kinds[k].op == OP_SELF ? "common" : kinds[k].op == OP_LISTEN ? "connection" : NULL;
		if (group)
			fprintf(f, "  %s:\n", group);
		fprintf(f, "    %-27s %s\n", kinds[k].usage, kinds[k].help);
	}
	fprintf(f,
		"\n"
		"TEXT is sent as given, or @N for N bytes of the pattern \"%s\"\n"
		"repeated (receivers show data=@N(pattern ok)). With count:N > 1 a literal\n"
		"TEXT gets #1 .. #N appended. Numbers are decimal or 0x hex; NODE is a node\n"
		"address in hex (0x optional) or Z.C.N. The connection steps need -t\n"
		"seqpacket or -t stream, the group and send steps -t rdm.\n"
		"\n"
		"output: JOIN, SELF, EVENT JOINED|LEFT, MEMBERS, LEAVE, BOUND, RECV, REJECTED,\n"
		"SENT, LISTENING, ACCEPTED, CONNECTED, PEER-CLOSED, CLOSED, ERROR lines, then\n"
		"DONE status=ok|fail; exit status 0 if every step succeeded, 1 if one\n"
		"failed, 2 for a bad option or step. A kernel JOINED/LEFT event about\n"
		"this socket itself (with -l -e) is not shown and not counted.\n",
		PATTERN);
}

static void reject(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void reject(const char *fmt, ...)
{
	va_list ap;

	fputs("tipc-client: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (tipc-client -h lists the options and steps)\n", stderr);
	exit(2);
}

/* ---------------------------------------------------------------- parsing */

static int parse_u32(const char *s, size_t len, uint32_t *v)
{
	unsigned long long acc = 0;
	int base = 10;
	size_t i = 0;

	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == len)
		return -1;
	for (; i < len; i++) {
		int d;
		char c = s[i];
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		acc = acc * (unsigned)base + (unsigned)d;
		if (acc > UINT32_MAX)
			return -1;
	}
	*v = (uint32_t)acc;
	return 0;
}

/* 1 to 8 hex digits with an optional 0x, or Z.C.N */
static int parse_node(const char *s, size_t len, uint32_t *v)
{
	char buf[32];
	unsigned z, c, n;
	char extra;
	size_t i = 0;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (memchr(buf, '.', len)) {
		if (sscanf(buf, "%u.%u.%u%c", &z, &c, &n, &extra) != 3 || z > 255 || c > 4095 || n > 4095)
			return -1;
		*v = (z << 24) | (c << 12) | n;
		return 0;
	}
	if (len > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X'))
		i = 2;
	if (len - i < 1 || len - i > 8)
		return -1;
	*v = 0;
	for (; i < len; i++) {
		char ch = buf[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return -1;
		*v = (*v << 4) | d;
	}
	return 0;
}

static void check_text(const char *src, const char *text)
{
	uint32_t n;

	if (text[0] != '@')
		return;
	if (parse_u32(text + 1, strlen(text + 1), &n) != 0)
		reject("step '%s': @N wants a byte count, not '%s'", src, text);
	if (n > MAX_PAYLOAD + 1)
		reject("step '%s': at most %u payload bytes (%u: one too many, to try the refusal)", src,
		       MAX_PAYLOAD, MAX_PAYLOAD + 1);
}

static void parse_step(const char *src, struct step *s)
{
	const char *colon = strchr(src, ':');
	size_t nlen = colon ? (size_t)(colon - src) : strlen(src);
	const char *rest = colon ? colon + 1 : NULL;
	const char *a;
	int optional = 0;

	memset(s, 0, sizeof(*s));
	s->source = src;
	s->text = "";
	for (size_t k = 0; k < NKINDS; k++)
		if (strlen(kinds[k].name) == nlen && strncmp(kinds[k].name, src, nlen) == 0)
			s->kind = &kinds[k];
	if (!s->kind)
		reject("unknown step '%s'", src);
	if (s->kind->conn && opt.sock_type == SOCK_RDM)
		reject("step '%s' needs -t seqpacket or -t stream", src);
	if (s->kind->rdm && opt.sock_type != SOCK_RDM)
		reject("step '%s' needs -t rdm", src);

	for (a = s->kind->args; *a; a++) {
		const char *end;
		size_t len;

		if (*a == '[') {
			optional = 1;
			continue;
		}
		if (*a == 't') {
			s->text = rest ? rest : "";
			rest = NULL;
			check_text(src, s->text);
			continue;
		}
		if (!rest) {
			if (optional)
				break;
			reject("step '%s' is missing arguments; its form is %s", src, s->kind->usage);
		}
		end = strchr(rest, ':');
		len = end ? (size_t)(end - rest) : strlen(rest);
		if ((*a == 'n' ? parse_u32(rest, len, &s->num[s->given])
			       : parse_node(rest, len, &s->num[s->given])) != 0)
			reject("step '%s': '%.*s' is not a %s; the form is %s", src, (int)len, rest,
			       *a == 'n' ? "number" : "node address", s->kind->usage);
		s->given++;
		rest = end ? end + 1 : NULL;
	}
	if (rest)
		reject("step '%s' has too many arguments; its form is %s", src, s->kind->usage);
}

/* ---------------------------------------------------------------- helpers */

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static const char *scope_name(void)
{
	return opt.scope == TIPC_NODE_SCOPE ? "node" : "cluster";
}

static const char *error_name(uint32_t err)
{
	static const char *const names[] = { "ok", "no_name", "no_port", "no_node", "overload", "conn_shutdown" };
	return err < sizeof(names) / sizeof(names[0]) ? names[err] : "?";
}

/* Builds message i of st.count from TEXT into payload; returns its length. */
static size_t make_payload(const char *text, unsigned long i)
{
	size_t len;
	int n;

	if (text[0] == '@') {
		uint32_t want = 0;
		parse_u32(text + 1, strlen(text + 1), &want);
		for (len = 0; len < want; len++)
			payload[len] = (unsigned char)PATTERN[len % PATTERN_LEN];
		return len;
	}
	if (st.count > 1)
		n = snprintf((char *)payload, sizeof(payload), "%s#%lu", text, i + 1);
	else
		n = snprintf((char *)payload, sizeof(payload), "%s", text);
	len = n < 0 ? 0 : (size_t)n;
	return len < sizeof(payload) ? len : sizeof(payload) - 1;
}

/* Renders a payload as group_member does: @N(pattern ok) for a pattern of
 * 64 bytes or more, else quoted text with escapes (or hex with -x), cut
 * after SHOW_MAX bytes with "..." appended. */
static const char *render(const unsigned char *p, size_t len)
{
	static char buf[SHOW_MAX * 4 + 16];
	size_t shown = len < SHOW_MAX ? len : SHOW_MAX, k, o = 0;
	int pattern = len >= 64;

	for (k = 0; pattern && k < len; k++)
		pattern = p[k] == (unsigned char)PATTERN[k % PATTERN_LEN];
	if (pattern) {
		snprintf(buf, sizeof(buf), "@%zu(pattern ok)", len);
		return buf;
	}
	if (opt.hex) {
		for (k = 0; k < shown; k++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%02x", p[k]);
	} else {
		buf[o++] = '"';
		for (k = 0; k < shown; k++) {
			unsigned char c = p[k];
			if (c == '"' || c == '\\') {
				buf[o++] = '\\';
				buf[o++] = (char)c;
			} else if (c >= 32 && c <= 126) {
				buf[o++] = (char)c;
			} else {
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", c);
			}
		}
		buf[o++] = '"';
	}
	if (shown < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static struct sockaddr_tipc socket_addr(uint32_t node, uint32_t port)
{
	struct sockaddr_tipc a;

	memset(&a, 0, sizeof(a));
	a.family = AF_TIPC;
	a.addrtype = TIPC_SOCKET_ADDR;
	a.addr.id.node = node;
	a.addr.id.ref = port;
	return a;
}

static struct sockaddr_tipc service_addr(uint32_t type, uint32_t instance)
{
	struct sockaddr_tipc a;

	memset(&a, 0, sizeof(a));
	a.family = AF_TIPC;
	a.addrtype = TIPC_SERVICE_ADDR;
	a.addr.name.name.type = type;
	a.addr.name.name.instance = instance;
	return a;
}

static struct sockaddr_tipc range_addr(uint32_t type, uint32_t lower, uint32_t upper)
{
	struct sockaddr_tipc a;

	memset(&a, 0, sizeof(a));
	a.family = AF_TIPC;
	a.addrtype = TIPC_SERVICE_RANGE;
	a.addr.nameseq.type = type;
	a.addr.nameseq.lower = lower;
	a.addr.nameseq.upper = upper;
	return a;
}

static int apply_mcast_method(int fd)
{
	if (opt.mcast_method && setsockopt(fd, SOL_TIPC, opt.mcast_method, NULL, 0) != 0) {
		out("ERROR socket option %s: %s", opt.mcast_method == TIPC_MCAST_BROADCAST
		    ? "TIPC_MCAST_BROADCAST" : "TIPC_MCAST_REPLICAST", err_text(errno));
		return -1;
	}
	return 0;
}

/* The socket of -t's type with the options applied; -1 after an ERROR line. */
static int main_socket(void)
{
	int fd, zero = 0;

	if (st.sock >= 0)
		return st.sock;
	fd = socket(AF_TIPC, opt.sock_type, 0);
	if (fd < 0) {
		out("ERROR socket: %s", err_text(errno));
		return -1;
	}
	if (opt.importance >= 0 &&
	    setsockopt(fd, SOL_TIPC, TIPC_IMPORTANCE, &opt.importance, sizeof(opt.importance)) != 0) {
		out("ERROR socket option TIPC_IMPORTANCE: %s", err_text(errno));
		close(fd);
		return -1;
	}
	if (opt.returnable &&
	    setsockopt(fd, SOL_TIPC, TIPC_DEST_DROPPABLE, &zero, sizeof(zero)) != 0) {
		out("ERROR socket option TIPC_DEST_DROPPABLE: %s", err_text(errno));
		close(fd);
		return -1;
	}
	if (apply_mcast_method(fd) != 0) {
		close(fd);
		return -1;
	}
	st.sock = fd;
	return fd;
}

/* The socket that receives: the connection if there is one. */
static int work_socket(void)
{
	return st.conn >= 0 ? st.conn : main_socket();
}

static int learn_self(int fd)
{
	struct sockaddr_tipc a;
	socklen_t alen = sizeof(a);

	memset(&a, 0, sizeof(a));
	if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		out("ERROR getsockname: %s", err_text(errno));
		return -1;
	}
	st.self = a.addr.id;
	return 0;
}

/* ---------------------------------------------------------------- members */

static struct member *find_member(uint32_t instance, uint32_t node, uint32_t port, int any_socket)
{
	for (int k = 0; k < st.nmembers; k++) {
		struct member *m = &st.members[k];
		if (m->instance == instance && (any_socket || (m->node == node && m->port == port)))
			return m;
	}
	return NULL;
}

static void member_event(int left, uint32_t instance, uint32_t node, uint32_t port)
{
	struct member *m = find_member(instance, node, port, 0);

	if (left && m)
		*m = st.members[--st.nmembers];
	else if (!left && !m && st.nmembers < MAX_MEMBERS)
		st.members[st.nmembers++] = (struct member){ instance, node, port };
}

/* ---------------------------------------------------------------- receiving */

enum got { GOT_NOTHING, GOT_EVENT, GOT_DATA, GOT_EOF, GOT_ERROR };

/* Reads one message from fd without blocking and prints it. */
static enum got take_one(int fd, int echo)
{
	struct sockaddr_tipc from[2];
	struct iovec iov = { inbuf, sizeof(inbuf) };
	struct msghdr mh;
	struct cmsghdr *c;
	uint32_t err = 0, err_len = 0, dest[3] = { 0, 0, 0 };
	const unsigned char *ret_data = NULL;
	size_t ret_len = 0;
	int has_err = 0, has_dest = 0, is_conn = st.conn >= 0 && fd == st.conn;
	char member[48] = "", destbuf[48] = "";
	ssize_t n;

	memset(from, 0, sizeof(from));
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = from;
	mh.msg_namelen = sizeof(from);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctlbuf;
	mh.msg_controllen = sizeof(ctlbuf);

	n = recvmsg(fd, &mh, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return GOT_NOTHING;
		if (is_conn && (errno == ECONNRESET || errno == ENOTCONN || errno == EPIPE)) {
			out("PEER-CLOSED err=%s", err_text(errno));
			st.conn_over = 1;
			return GOT_EOF;
		}
		out("ERROR recv: %s", err_text(errno));
		return GOT_ERROR;
	}
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_TIPC)
			continue;
		if (c->cmsg_type == TIPC_ERRINFO && c->cmsg_len >= CMSG_LEN(2 * sizeof(uint32_t))) {
			uint32_t v[2];
			memcpy(v, CMSG_DATA(c), sizeof(v));
			err = v[0];
			err_len = v[1];
			has_err = 1;
		} else if (c->cmsg_type == TIPC_RETDATA) {
			ret_data = CMSG_DATA(c);
			ret_len = c->cmsg_len - CMSG_LEN(0);
		} else if (c->cmsg_type == TIPC_DESTNAME && c->cmsg_len >= CMSG_LEN(sizeof(dest))) {
			memcpy(dest, CMSG_DATA(c), sizeof(dest));
			has_dest = 1;
		}
	}
	if (mh.msg_namelen >= sizeof(from) && from[1].addrtype == TIPC_SERVICE_ADDR)
		snprintf(member, sizeof(member), " member=%u:%u", from[1].addr.name.name.type,
			 from[1].addr.name.name.instance);

	/* group membership event: no payload, flagged out-of-band */
	if (mh.msg_flags & MSG_OOB) {
		int left = (mh.msg_flags & MSG_EOR) != 0;
		uint32_t node = from[0].addr.id.node, port = from[0].addr.id.ref;

		if (node == st.self.node && port == st.self.ref)
			return GOT_EVENT; /* our own, with -l; group_member has none */
		member_event(left, from[1].addr.name.name.instance, node, port);
		out("EVENT %s member=%u:%u from=%08x:%u members=%d", left ? "LEFT" : "JOINED",
		    from[1].addr.name.name.type, from[1].addr.name.name.instance, node, port, st.nmembers);
		return GOT_EVENT;
	}

	if (is_conn && (n == 0 || has_err)) {
		if (has_err && err != TIPC_CONN_SHUTDOWN)
			out("PEER-CLOSED err=%u(%s)", err, error_name(err));
		else
			out("PEER-CLOSED");
		st.conn_over = 1;
		return GOT_EOF;
	}
	if (has_err) {
		out("REJECTED err=%u(%s) from=%08x:%u len=%u data=%s", err, error_name(err),
		    from[0].addr.id.node, from[0].addr.id.ref, err_len,
		    render(ret_data ? ret_data : inbuf, ret_data ? ret_len : 0));
		return GOT_EVENT;
	}

	st.data_seen++;
	if (is_conn) {
		out("RECV from=%08x:%u len=%zd data=%s", st.peer.node, st.peer.ref, n,
		    render(inbuf, (size_t)n));
	} else {
		if (has_dest && !member[0])
			snprintf(destbuf, sizeof(destbuf), " dest=%u:%u:%u", dest[0], dest[1], dest[2]);
		out("RECV from=%08x:%u%s%s len=%zd data=%s", from[0].addr.id.node, from[0].addr.id.ref,
		    member, destbuf, n, render(inbuf, (size_t)n));
	}
	if (echo) {
		ssize_t r;
		if (is_conn) {
			r = send(fd, inbuf, (size_t)n, 0);
		} else {
			struct sockaddr_tipc back = socket_addr(from[0].addr.id.node, from[0].addr.id.ref);
			r = sendto(fd, inbuf, (size_t)n, 0, (struct sockaddr *)&back, sizeof(back));
		}
		if (r < 0)
			out("ERROR echo: %s", err_text(errno));
	}
	return GOT_DATA;
}

/* Receives for ms milliseconds, or until want_data data messages arrived,
 * or until want_members members are known. Returns 0 when that happened
 * (or when nothing was wanted and the time is up), -1 otherwise. */
static int receive(long long ms, unsigned long want_data, int want_members, int echo)
{
	long long end = now_ms() + ms;
	unsigned long before = st.data_seen;
	int fd = work_socket();
	int wanted = want_data > 0 || want_members > 0;

	if (fd < 0)
		return -1;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left;
		int r;

		if (want_data > 0 && st.data_seen - before >= want_data)
			return 0;
		if (want_members > 0 && st.nmembers >= want_members)
			return 0;
		if (st.conn >= 0 && fd == st.conn && st.conn_over)
			return wanted ? -1 : 0;
		left = end - now_ms();
		if (left <= 0)
			return wanted ? -1 : 0;
		r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR) {
			out("ERROR poll: %s", err_text(errno));
			return -1;
		}
		if (r <= 0)
			continue;
		for (;;) {
			enum got g = take_one(fd, echo);
			if (g == GOT_NOTHING)
				break;
			if (g == GOT_ERROR)
				return -1;
			if (g == GOT_EOF)
				return wanted && !(want_data > 0 && st.data_seen - before >= want_data) ? -1 : 0;
			if ((want_data > 0 && st.data_seen - before >= want_data) ||
			    (want_members > 0 && st.nmembers >= want_members))
				return 0;
		}
	}
}

/* ---------------------------------------------------------------- sending */

/* Sends st.count messages made from text to dst (or on the connection /
 * without address when dst is NULL) and prints SENT. */
static int send_all(int fd, const char *mode, const struct sockaddr_tipc *dst, const char *text)
{
	size_t len = 0;

	if (fd < 0)
		return -1;
	for (unsigned long i = 0; i < st.count; i++) {
		ssize_t r;

		len = make_payload(text, i);
		if (dst)
			r = sendto(fd, payload, len, 0, (const struct sockaddr *)dst, sizeof(*dst));
		else
			r = send(fd, payload, len, 0);
		if (r < 0) {
			out("ERROR send %s (message %lu of %lu): %s", mode, i + 1, st.count, err_text(errno));
			return -1;
		}
	}
	out("SENT mode=%s len=%zu count=%lu", mode, len, st.count);
	return 0;
}

/* Subscribes at the topology server, {TIPC_TOP_SRV, TIPC_TOP_SRV}, over
 * one SEQPACKET connection made on first use; the user handle carries the
 * subscription's number for the TOPO lines. */
static int subscribe(const uint32_t *v, int given)
{
	struct tipc_subscr sub;
	uint32_t n = st.nsubs + 1;

	if (st.topsrv < 0) {
		struct sockaddr_tipc top = service_addr(TIPC_TOP_SRV, TIPC_TOP_SRV);
		int fd = socket(AF_TIPC, SOCK_SEQPACKET, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&top, sizeof(top)) != 0) {
			out("ERROR subscribe: topology server: %s", err_text(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		st.topsrv = fd;
	}
	memset(&sub, 0, sizeof(sub));
	sub.seq.type = v[0];
	sub.seq.lower = v[1];
	sub.seq.upper = v[2];
	sub.filter = v[3];
	sub.timeout = given > 4 ? v[4] : TIPC_WAIT_FOREVER;
	memcpy(sub.usr_handle, &n, sizeof(n));
	if (send(st.topsrv, &sub, sizeof(sub), 0) != (ssize_t)sizeof(sub)) {
		out("ERROR subscribe: %s", err_text(errno));
		return -1;
	}
	st.nsubs = n;
	out("SUBSCRIBED sub=%u service=%u:%u:%u filter=%u", n, v[0], v[1], v[2], v[3]);
	return 0;
}

/* Prints the topology events that arrive during `ms`. */
static int topology_events(long long ms)
{
	long long end = now_ms() + ms;

	if (st.topsrv < 0) {
		out("ERROR events: no subscription");
		return -1;
	}
	for (;;) {
		struct pollfd p = { .fd = st.topsrv, .events = POLLIN };
		long long left = end - now_ms();
		struct tipc_event ev;
		const char *kind;
		uint32_t n;
		ssize_t r;

		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		r = recv(st.topsrv, &ev, sizeof(ev), 0);
		if (r != (ssize_t)sizeof(ev)) {
			out("ERROR events: the topology server closed the connection (%zd)", r);
			return -1;
		}
		memcpy(&n, ev.s.usr_handle, sizeof(n));
		kind = ev.event == TIPC_PUBLISHED ? "published"
		     : ev.event == TIPC_WITHDRAWN ? "withdrawn"
		     : ev.event == TIPC_SUBSCR_TIMEOUT ? "timeout" : "unknown";
		out("TOPO sub=%u event=%s found=%u:%u:%u port=%08x:%u", n, kind, ev.s.seq.type, ev.found_lower,
		    ev.found_upper, ev.port.node, ev.port.ref);
	}
}

static int need_group(const char *mode)
{
	if (st.joined)
		return 0;
	out("ERROR send %s: not a group member", mode);
	return -1;
}

/* ---------------------------------------------------------------- steps */

static int run_step(const struct step *s)
{
	const uint32_t *v = s->num;
	struct sockaddr_tipc a;
	int fd;

	switch (s->kind->op) {
	case OP_JOIN: {
		struct tipc_group_req req;

		if ((fd = main_socket()) < 0)
			return -1;
		memset(&req, 0, sizeof(req));
		req.type = v[0];
		req.instance = v[1];
		req.scope = (uint32_t)opt.scope;
		req.flags = (uint32_t)opt.group_flags;
		if (setsockopt(fd, SOL_TIPC, TIPC_GROUP_JOIN, &req, sizeof(req)) != 0) {
			out("ERROR join %u:%u: %s", v[0], v[1], err_text(errno));
			return -1;
		}
		st.joined = 1;
		st.group_type = v[0];
		/* joining resets the multicast method */
		if (apply_mcast_method(fd) != 0 || learn_self(fd) != 0)
			return -1;
		out("JOIN group=%u member=%u scope=%s flags=%s%s", v[0], v[1], scope_name(),
		    opt.group_flags & TIPC_GROUP_LOOPBACK ? "loopback," : "",
		    opt.group_flags & TIPC_GROUP_MEMBER_EVTS ? "member_evts" : "");
		out("SELF node=%08x port=%u", st.self.node, st.self.ref);
		return 0;
	}
	case OP_LEAVE:
		if (!st.joined) {
			out("ERROR leave: not joined");
			return -1;
		}
		if (setsockopt(st.sock, SOL_TIPC, TIPC_GROUP_LEAVE, NULL, 0) != 0) {
			out("ERROR leave: %s", err_text(errno));
			return -1;
		}
		st.joined = 0;
		out("LEAVE group=%u", st.group_type);
		return 0;
	case OP_WAIT_MEMBERS: {
		long long ms = s->given > 1 ? v[1] : DEFAULT_WAIT_MS;
		if (receive(ms, 0, (int)(v[0] > MAX_MEMBERS ? MAX_MEMBERS : v[0]), 0) != 0) {
			out("ERROR wait-members: %d of %u members after %lld ms", st.nmembers, v[0], ms);
			return -1;
		}
		out("MEMBERS %d", st.nmembers);
		return 0;
	}
	case OP_BCAST:
		if (need_group("bcast") != 0)
			return -1;
		return send_all(st.sock, "bcast", NULL, s->text);
	case OP_MCAST:
		if (need_group("mcast") != 0)
			return -1;
		a = range_addr(st.group_type, v[0], v[0]);
		return send_all(st.sock, "mcast", &a, s->text);
	case OP_ANYCAST:
		if (need_group("anycast") != 0)
			return -1;
		a = service_addr(st.group_type, v[0]);
		return send_all(st.sock, "anycast", &a, s->text);
	case OP_UNICAST:
	case OP_SEND_PORT:
		a = socket_addr(v[0], v[1]);
		return send_all(main_socket(), s->kind->name, &a, s->text);
	case OP_UNICAST_MEMBER: {
		struct member *m;
		if (need_group("unicast") != 0)
			return -1;
		m = find_member(v[0], 0, 0, 1);
		if (!m) {
			out("ERROR unicast-member: member %u not known (no JOINED event)", v[0]);
			return -1;
		}
		a = socket_addr(m->node, m->port);
		return send_all(st.sock, "unicast", &a, s->text);
	}
	case OP_BIND: {
		uint32_t upper = s->given > 2 ? v[2] : v[1];
		if ((fd = main_socket()) < 0)
			return -1;
		a = range_addr(v[0], v[1], upper);
		a.scope = (signed char)opt.scope;
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			out("ERROR bind %u:%u:%u: %s", v[0], v[1], upper, err_text(errno));
			return -1;
		}
		out("BOUND service=%u:%u:%u scope=%s", v[0], v[1], upper, scope_name());
		return 0;
	}
	case OP_SEND:
		a = service_addr(v[0], v[1]);
		return send_all(main_socket(), "service", &a, s->text);
	case OP_SEND_RANGE:
		a = range_addr(v[0], v[1], v[2]);
		return send_all(main_socket(), "range", &a, s->text);
	case OP_SELF:
		if ((fd = work_socket()) < 0 || learn_self(fd) != 0)
			return -1;
		out("SELF node=%08x port=%u", st.self.node, st.self.ref);
		return 0;
	case OP_RECV:
		return receive(v[0], 0, 0, 0);
	case OP_RECV_N: {
		long long ms = s->given > 1 ? v[1] : DEFAULT_WAIT_MS;
		unsigned long before = st.data_seen;
		if (v[0] == 0)
			return 0;
		if (receive(ms, v[0], 0, 0) != 0) {
			out("ERROR recv-n: %lu of %u messages after %lld ms", st.data_seen - before, v[0], ms);
			return -1;
		}
		return 0;
	}
	case OP_ECHO:
		return receive(v[0], 0, 0, 1);
	case OP_SLEEP: {
		struct timespec t = { (time_t)(v[0] / 1000), (long)(v[0] % 1000) * 1000000L };
		while (nanosleep(&t, &t) != 0 && errno == EINTR)
			;
		return 0;
	}
	case OP_COUNT:
		st.count = v[0] ? v[0] : 1;
		return 0;
	case OP_LISTEN:
		if ((fd = main_socket()) < 0)
			return -1;
		if (listen(fd, 16) != 0) {
			out("ERROR listen: %s", err_text(errno));
			return -1;
		}
		out("LISTENING");
		return 0;
	case OP_ACCEPT: {
		long long ms = s->given > 0 ? v[0] : DEFAULT_WAIT_MS;
		struct sockaddr_tipc peer;
		socklen_t plen = sizeof(peer);
		struct pollfd p = { st.sock, POLLIN, 0 };
		long long end = now_ms() + ms;
		int c, r;

		if (st.sock < 0) {
			out("ERROR accept: not listening");
			return -1;
		}
		do {
			long long left = end - now_ms();
			r = poll(&p, 1, left > 0 ? (int)(left > 1000 ? 1000 : left) : 0);
		} while ((r == 0 && now_ms() < end) || (r < 0 && errno == EINTR));
		if (r <= 0) {
			out("ERROR accept: no connection after %lld ms", ms);
			return -1;
		}
		memset(&peer, 0, sizeof(peer));
		c = accept(st.sock, (struct sockaddr *)&peer, &plen);
		if (c < 0) {
			out("ERROR accept: %s", err_text(errno));
			return -1;
		}
		if (st.conn >= 0 && st.conn != st.sock)
			close(st.conn);
		st.conn = c;
		st.conn_over = 0;
		st.peer = peer.addr.id;
		out("ACCEPTED peer=%08x:%u", st.peer.node, st.peer.ref);
		return 0;
	}
	case OP_CONNECT: {
		struct sockaddr_tipc peer;
		socklen_t plen = sizeof(peer);

		if ((fd = main_socket()) < 0)
			return -1;
		a = service_addr(v[0], v[1]);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			out("ERROR connect %u:%u: %s", v[0], v[1], err_text(errno));
			return -1;
		}
		memset(&peer, 0, sizeof(peer));
		if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0) {
			out("ERROR getpeername: %s", err_text(errno));
			return -1;
		}
		st.conn = fd;
		st.conn_over = 0;
		st.peer = peer.addr.id;
		out("CONNECTED peer=%08x:%u", st.peer.node, st.peer.ref);
		return 0;
	}
	case OP_CSEND:
		if (st.conn < 0) {
			out("ERROR send conn: not connected");
			return -1;
		}
		return send_all(st.conn, "conn", NULL, s->text);
	case OP_SINK: {
		/* reads until v[0] bytes came (or the end, or MS passed) and
		 * prints how many and their 64-bit FNV-1a hash */
		long long ms = s->given > 1 ? v[1] : 60000, end = now_ms() + ms;
		unsigned long long h = 0xcbf29ce484222325ULL, got = 0;

		if (st.conn < 0) {
			out("ERROR sink: not connected");
			return -1;
		}
		while (got < v[0] && now_ms() < end) {
			struct pollfd p = { st.conn, POLLIN, 0 };
			ssize_t n;

			if (poll(&p, 1, 1000) <= 0)
				continue;
			n = recv(st.conn, inbuf, sizeof(inbuf), MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0)
				break;
			for (ssize_t k = 0; k < n; k++) {
				h ^= inbuf[k];
				h *= 0x100000001b3ULL;
			}
			got += (unsigned long long)n;
		}
		out("SINK len=%llu fnv=%016llx", got, h);
		return got == v[0] ? 0 : -1;
	}
	case OP_SUBSCRIBE:
		if (v[3] != TIPC_SUB_PORTS && v[3] != TIPC_SUB_SERVICE) {
			out("ERROR subscribe: FILTER is 1 (ports) or 2 (service)");
			return -1;
		}
		return subscribe(v, s->given);
	case OP_EVENTS:
		return topology_events(v[0]);
	case OP_CLOSE:
		if (st.conn >= 0 && st.conn != st.sock) {
			close(st.conn);
		} else if (st.sock >= 0) {
			close(st.sock);
			st.sock = -1;
			st.joined = 0;
		}
		st.conn = -1;
		st.conn_over = 0;
		out("CLOSED");
		return 0;
	}
	return -1;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	struct step *steps;
	int c, nsteps, failed = 0;

	clock_gettime(CLOCK_MONOTONIC, &st.start);
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	while ((c = getopt(argc, argv, "+t:s:lei:m:rxTh")) != -1) {
		switch (c) {
		case 't':
			if (strcmp(optarg, "rdm") == 0)
				opt.sock_type = SOCK_RDM;
			else if (strcmp(optarg, "seqpacket") == 0)
				opt.sock_type = SOCK_SEQPACKET;
			else if (strcmp(optarg, "stream") == 0)
				opt.sock_type = SOCK_STREAM;
			else
				reject("-t wants rdm, seqpacket or stream, not '%s'", optarg);
			break;
		case 's':
			if (strcmp(optarg, "cluster") == 0)
				opt.scope = TIPC_CLUSTER_SCOPE;
			else if (strcmp(optarg, "node") == 0)
				opt.scope = TIPC_NODE_SCOPE;
			else
				reject("-s wants cluster or node, not '%s'", optarg);
			break;
		case 'l':
			opt.group_flags |= TIPC_GROUP_LOOPBACK;
			break;
		case 'e':
			opt.group_flags |= TIPC_GROUP_MEMBER_EVTS;
			break;
		case 'i':
			if (strlen(optarg) != 1 || optarg[0] < '0' || optarg[0] > '3')
				reject("-i wants an importance 0..3, not '%s'", optarg);
			opt.importance = optarg[0] - '0';
			break;
		case 'm':
			if (strcmp(optarg, "broadcast") == 0)
				opt.mcast_method = TIPC_MCAST_BROADCAST;
			else if (strcmp(optarg, "replicast") == 0)
				opt.mcast_method = TIPC_MCAST_REPLICAST;
			else
				reject("-m wants broadcast or replicast, not '%s'", optarg);
			break;
		case 'r':
			opt.returnable = 1;
			break;
		case 'x':
			opt.hex = 1;
			break;
		case 'T':
			opt.stamps = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (optopt && strchr("tsim", optopt))
				reject("option -%c needs a value", optopt);
			reject("unknown option -%c", optopt ? optopt : '?');
		}
	}
	nsteps = argc - optind;
	if (nsteps <= 0)
		reject("no steps given");
	steps = calloc((size_t)nsteps, sizeof(*steps));
	if (!steps) {
		perror("tipc-client");
		return 1;
	}
	for (int k = 0; k < nsteps; k++)
		parse_step(argv[optind + k], &steps[k]);

	for (int k = 0; k < nsteps && !failed; k++)
		failed = run_step(&steps[k]) != 0;
	out("DONE status=%s", failed ? "fail" : "ok");
	return failed;
}
