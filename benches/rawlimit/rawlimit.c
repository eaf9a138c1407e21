// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rawlimit: how fast can plain AF_PACKET frames go over one interface?
 *
 * The tipc-rs benches divide the stack's figures by the ones this probe
 * measures in the same namespaces, on the same CPUs, in the same sitting.
 *
 *   rawlimit echo     -i IF
 *   rawlimit pingpong -i IF -s SIZE -n N [--stop]
 *   rawlimit sink     -i IF [--rx ring|mmsg] [--idle-ms MS]
 *   rawlimit blast    -i IF --dst MAC -s SIZE -t SECS [--bypass]
 *
 * Probe frames use ethertype 0x88B5 (IEEE 802 local experimental), so a
 * TIPC stack (0x88CA) on the same link never sees them. After the 14-byte
 * Ethernet header every probe frame carries a 24-byte probe header, all
 * fields big-endian:
 *
 *   0  u32 magic "RLMT"     8  u32 run id (random per pingpong / blast)
 *   4  u8  version (1)     12  u32 sequence number (pingpong)
 *   5  u8  kind            16  u64 frame count (END only)
 *   6  u16 reserved (0)
 *
 * Kinds are ASCII letters so they are readable in a capture:
 * 'P' ping, 'R' reply, 'D' data, 'E' end of a blast, 'S' stop the echo.
 * The rest of the frame is zero. Frames whose length, ethertype, magic or
 * version do not match, or that belong to another run, are ignored.
 *
 * Each mode prints one line of key=value words on stdout; diagnostics go
 * to stderr. Build: gcc -O2 -Wall -Wextra -o rawlimit rawlimit.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ wire format */

#define PROBE_ETHERTYPE 0x88B5
#define PROBE_MAGIC 0x524C4D54u /* "RLMT" */
#define PROBE_VERSION 1
#define PROBE_HDR_LEN 24
#define PROBE_MIN_FRAME (ETH_HLEN + PROBE_HDR_LEN)

enum kind {
	K_PING = 'P',
	K_REPLY = 'R',
	K_DATA = 'D',
	K_END = 'E',
	K_STOP = 'S',
};

/* Smallest and largest frame the probe sends (the upper bound is further
 * limited by the interface MTU). */
#define FRAME_MIN 60
#define FRAME_MAX 9018
/* Receive buffers are larger than any frame we send, so nothing of ours is
 * ever truncated; foreign jumbo frames may be, and are then just ignored. */
#define RXBUF_LEN 16384

struct probe {
	uint8_t kind;
	uint32_t run;
	uint32_t seq;
	uint64_t count;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

/* Writes a complete probe frame of `len` bytes (len >= PROBE_MIN_FRAME). */
static void frame_build(uint8_t *f, size_t len, const uint8_t dst[6], const uint8_t src[6],
			const struct probe *pr)
{
	memset(f, 0, len);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, PROBE_ETHERTYPE);
	uint8_t *h = f + ETH_HLEN;
	put32(h, PROBE_MAGIC);
	h[4] = PROBE_VERSION;
	h[5] = pr->kind;
	put32(h + 8, pr->run);
	put32(h + 12, pr->seq);
	put64(h + 16, pr->count);
}

/* Decodes the probe header of a received frame. `len` is the number of
 * bytes actually present at `f`. Returns 0 and fills *pr, or -1 if this is
 * not a probe frame. */
static int frame_parse(const uint8_t *f, size_t len, struct probe *pr)
{
	if (len < PROBE_MIN_FRAME)
		return -1;
	if (get16(f + 12) != PROBE_ETHERTYPE)
		return -1;
	const uint8_t *h = f + ETH_HLEN;
	if (get32(h) != PROBE_MAGIC || h[4] != PROBE_VERSION)
		return -1;
	pr->kind = h[5];
	pr->run = get32(h + 8);
	pr->seq = get32(h + 12);
	pr->count = get64(h + 16);
	return 0;
}

/* --------------------------------------------------------------- helpers */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fatal(const char *fmt, ...)
{
	va_list ap;
	fputs("rawlimit: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

#define FATAL_ERRNO(what) fatal("%s: %s", (what), strerror(errno))

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t new_run_id(void)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = (uint32_t)(mono_ns() ^ ((uint64_t)getpid() << 16));
	return r ? r : 1;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

static void format_mac(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

static const uint8_t BROADCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* ------------------------------------------------------------ the socket */

struct port {
	int fd;
	int ifindex;
	int mtu;
	uint8_t mac[6];
};

/* Opens a packet socket on `ifname`. It receives nothing until port_bind():
 * the socket is created with protocol 0, so set-up (rings, buffer sizes)
 * happens before any frame is queued, and frames of other interfaces are
 * never seen. */
static void port_open(struct port *p, const char *ifname)
{
	struct ifreq ifr;

	if (strlen(ifname) >= sizeof ifr.ifr_name)
		fatal("interface name too long: %s", ifname);
	p->fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (p->fd < 0)
		FATAL_ERRNO("socket(AF_PACKET) (needs CAP_NET_RAW)");

	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	if (ioctl(p->fd, SIOCGIFINDEX, &ifr) < 0)
		fatal("interface %s: %s", ifname, strerror(errno));
	p->ifindex = ifr.ifr_ifindex;
	if (ioctl(p->fd, SIOCGIFMTU, &ifr) < 0)
		FATAL_ERRNO("SIOCGIFMTU");
	p->mtu = ifr.ifr_mtu;
	if (ioctl(p->fd, SIOCGIFHWADDR, &ifr) < 0)
		FATAL_ERRNO("SIOCGIFHWADDR");
	memcpy(p->mac, ifr.ifr_hwaddr.sa_data, 6);
}

/* Attaches the socket to the interface and the probe ethertype: from now
 * on it receives probe frames (and only those). */
static void port_bind(struct port *p)
{
	struct sockaddr_ll a;
	memset(&a, 0, sizeof a);
	a.sll_family = AF_PACKET;
	a.sll_ifindex = p->ifindex;
	a.sll_protocol = htons(PROBE_ETHERTYPE);
	if (bind(p->fd, (struct sockaddr *)&a, sizeof a) < 0)
		FATAL_ERRNO("bind(AF_PACKET)");
}

static void port_check_size(const struct port *p, long size)
{
	long most = (long)p->mtu + ETH_HLEN;
	if (most > FRAME_MAX)
		most = FRAME_MAX;
	if (size < FRAME_MIN || size > most)
		fatal("frame size %ld out of range %d..%ld (MTU %d + 14)", size, FRAME_MIN, most,
		      p->mtu);
}

static void set_recv_timeout(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
		FATAL_ERRNO("SO_RCVTIMEO");
}

/* Sends one frame, retrying while the kernel has no room for it. */
static int send_frame(int fd, const uint8_t *f, size_t len)
{
	for (int tries = 0; tries < 1000; tries++) {
		ssize_t r = send(fd, f, len, 0);
		if (r == (ssize_t)len)
			return 0;
		if (r < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
			return -1;
		usleep(100);
	}
	errno = ENOBUFS;
	return -1;
}

/* Receives one probe frame addressed to us (not one we sent). Returns its
 * length, 0 on timeout / interruption, and exits on real errors. */
static size_t recv_probe(int fd, uint8_t *buf, size_t cap, int flags, struct probe *pr)
{
	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof from;
		ssize_t r = recvfrom(fd, buf, cap, flags, (struct sockaddr *)&from, &fl);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			FATAL_ERRNO("recv");
		}
		if (fl >= sizeof from && from.sll_pkttype == PACKET_OUTGOING)
			continue;
		/* r never exceeds cap without MSG_TRUNC, but be explicit */
		size_t len = (size_t)r < cap ? (size_t)r : cap;
		if (frame_parse(buf, len, pr) == 0)
			return len;
	}
}

/* ------------------------------------------------------------- options */

struct options {
	const char *ifname;
	long size;
	long rounds;
	long warmup; /* -1: derived from rounds */
	long timeout_ms;
	int stop;
	int busy;
	const char *dst;
	int rx_ring;
	long idle_ms;
	long wait_s;
	long ring_mb;
	long runs;
	double rate; /* blast: frames/s, 0 for as fast as possible */
	long rcvbuf;
	double secs;
	int bypass;
	long batch;
};

/* ------------------------------------------------------------------ echo */

static int run_echo(const struct options *o)
{
	static uint8_t buf[RXBUF_LEN];
	struct port p;
	struct probe pr;
	uint32_t last_run = 0;
	long echoed = 0;
	const char *why = "signal";

	port_open(&p, o->ifname);
	port_bind(&p);
	/* wake up now and then to notice signals */
	set_recv_timeout(p.fd, 500);

	while (!interrupted) {
		size_t len = recv_probe(p.fd, buf, sizeof buf, o->busy ? MSG_DONTWAIT : 0, &pr);
		if (len == 0)
			continue;
		if (pr.kind == K_STOP) {
			/* only the client we have been serving may stop us */
			if (last_run != 0 && pr.run == last_run) {
				why = "stop";
				break;
			}
			continue;
		}
		/* a ping we could not send back unchanged is not one of ours */
		if (pr.kind != K_PING || len > (size_t)p.mtu + ETH_HLEN || len > FRAME_MAX)
			continue;
		/* reply to the sender, from our own address, same length */
		memcpy(buf, buf + 6, 6);
		memcpy(buf + 6, p.mac, 6);
		buf[ETH_HLEN + 5] = K_REPLY;
		if (send_frame(p.fd, buf, len) < 0)
			FATAL_ERRNO("send reply");
		last_run = pr.run;
		echoed++;
	}
	printf("echo if=%s echoed=%ld ended=%s\n", o->ifname, echoed, why);
	fflush(stdout);
	return 0;
}

/* -------------------------------------------------------------- pingpong */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted sample, in microseconds. */
static double pct_us(const uint64_t *sorted, long n, double q)
{
	long rank = (long)((double)n * q + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)sorted[rank - 1] / 1e3;
}

/* One exchange: returns the round-trip time in ns, or 0 if no matching
 * reply came within the timeout. */
static uint64_t exchange(const struct port *p, const struct options *o, uint8_t *tx,
			 uint8_t *rx, uint32_t run, uint32_t seq, uint8_t peer[6], int *learned)
{
	struct probe pr = { .kind = K_PING, .run = run, .seq = seq };
	frame_build(tx, (size_t)o->size, *learned ? peer : BROADCAST, p->mac, &pr);

	uint64_t t0 = mono_ns();
	uint64_t deadline = t0 + (uint64_t)o->timeout_ms * 1000000u;
	if (send_frame(p->fd, tx, (size_t)o->size) < 0)
		FATAL_ERRNO("send ping");
	for (;;) {
		size_t len = recv_probe(p->fd, rx, RXBUF_LEN, o->busy ? MSG_DONTWAIT : 0, &pr);
		uint64_t t1 = mono_ns();
		if (len > 0 && pr.kind == K_REPLY && pr.run == run && pr.seq == seq) {
			if (!*learned) {
				memcpy(peer, rx + 6, 6);
				*learned = 1;
			}
			return t1 - t0 ? t1 - t0 : 1;
		}
		/* replies to earlier, timed-out pings and strays are skipped */
		if (t1 >= deadline || interrupted)
			return 0;
	}
}

static int run_pingpong(const struct options *o)
{
	static uint8_t tx[FRAME_MAX], rx[RXBUF_LEN];
	struct port p;
	uint8_t peer[6];
	int learned = 0;
	uint32_t run = new_run_id();
	long warmup = o->warmup;

	if (warmup < 0) {
		warmup = o->rounds / 10;
		if (warmup < 100)
			warmup = 100;
		if (warmup > 2000)
			warmup = 2000;
	}
	if (o->dst) {
		if (parse_mac(o->dst, peer) < 0)
			fatal("bad --dst MAC: %s", o->dst);
		learned = 1;
	}
	port_open(&p, o->ifname);
	port_check_size(&p, o->size);
	port_bind(&p);
	if (!o->busy) {
		int ms = o->timeout_ms < 50 ? (int)o->timeout_ms : 50;
		set_recv_timeout(p.fd, ms > 0 ? ms : 1);
	}

	uint64_t *rtt = calloc((size_t)o->rounds, sizeof *rtt);
	if (!rtt)
		fatal("out of memory");
	long got = 0, lost = 0, warm_lost = 0;
	uint32_t seq = 0;

	for (long i = 0; i < warmup && !interrupted; i++)
		if (!exchange(&p, o, tx, rx, run, ++seq, peer, &learned))
			warm_lost++;
	for (long i = 0; i < o->rounds && !interrupted; i++) {
		uint64_t t = exchange(&p, o, tx, rx, run, ++seq, peer, &learned);
		if (t)
			rtt[got++] = t;
		else
			lost++;
	}

	if (o->stop) {
		struct probe pr = { .kind = K_STOP, .run = run };
		frame_build(tx, FRAME_MIN, learned ? peer : BROADCAST, p.mac, &pr);
		if (send_frame(p.fd, tx, FRAME_MIN) < 0)
			fprintf(stderr, "rawlimit: send stop: %s\n", strerror(errno));
	}

	char peer_s[18] = "none";
	if (learned)
		format_mac(peer, peer_s);
	printf("pingpong if=%s size=%ld n=%ld warmup=%ld lost=%ld warmup_lost=%ld peer=%s", o->ifname,
	       o->size, got, warmup, lost, warm_lost, peer_s);
	if (got > 0) {
		double sum = 0;
		qsort(rtt, (size_t)got, sizeof *rtt, cmp_u64);
		for (long i = 0; i < got; i++)
			sum += (double)rtt[i];
		printf(" median_us=%.2f p90_us=%.2f p99_us=%.2f min_us=%.2f max_us=%.2f mean_us=%.2f",
		       pct_us(rtt, got, 0.50), pct_us(rtt, got, 0.90), pct_us(rtt, got, 0.99),
		       (double)rtt[0] / 1e3, (double)rtt[got - 1] / 1e3, sum / (double)got / 1e3);
	}
	printf("\n");
	fflush(stdout);
	free(rtt);
	return got > 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ sink */

enum { MAX_RUNS = 64 };

struct tally {
	uint32_t run[MAX_RUNS]; /* latched from the first DATA frame of each */
	int runs;              /* runs latched so far */
	int want_runs;         /* runs to count (--runs, 1 by default) */
	int ends;              /* runs whose END arrived */
	uint8_t end_seen[MAX_RUNS];
	long frames;
	uint64_t bytes;
	long foreign;          /* DATA frames of other runs */
	uint64_t first_ns;     /* receive time of the first / last counted frame */
	uint64_t last_ns;
	long long sent;        /* sum of the counted runs' END counts so far */
	int ended;             /* every counted run's END arrived */
};

/* The index of `run` among the runs counted, latching it while fewer than
 * want_runs are; -1 for a run not counted. */
static int tally_run(struct tally *t, uint32_t run, int latch)
{
	for (int i = 0; i < t->runs; i++)
		if (t->run[i] == run)
			return i;
	if (!latch || t->runs >= t->want_runs)
		return -1;
	t->run[t->runs] = run;
	return t->runs++;
}

/* Accounts one received frame. `wire_len` is its real length, `have` the
 * bytes readable at `f`. */
static void tally_frame(struct tally *t, const uint8_t *f, size_t have, size_t wire_len,
			uint64_t when_ns)
{
	struct probe pr;
	if (frame_parse(f, have, &pr) < 0)
		return;
	if (pr.kind == K_DATA) {
		if (tally_run(t, pr.run, 1) < 0) {
			t->foreign++;
			return;
		}
		if (t->frames == 0)
			t->first_ns = when_ns;
		t->last_ns = when_ns;
		t->frames++;
		t->bytes += wire_len;
	} else if (pr.kind == K_END) {
		int i = tally_run(t, pr.run, 0);
		if (i < 0 || t->end_seen[i])
			return;
		t->end_seen[i] = 1;
		t->sent += pr.count > (uint64_t)(LLONG_MAX / MAX_RUNS) ? LLONG_MAX / MAX_RUNS
								       : (long long)pr.count;
		t->ended = ++t->ends == t->want_runs;
	}
}

/* Common stop test: END seen, idle after the first frame, nothing at all
 * for too long, or a signal. */
static int sink_should_stop(const struct tally *t, const struct options *o, uint64_t now,
			    uint64_t start, uint64_t last_activity)
{
	if (t->ended || interrupted)
		return 1;
	if (t->frames > 0)
		return now - last_activity > (uint64_t)o->idle_ms * 1000000u;
	return now - start > (uint64_t)o->wait_s * 1000000000u;
}

/* TPACKET_V3 ring: the kernel fills whole blocks of frames and hands each
 * block over once it is full or its retire timer expires. */
static void sink_ring(struct port *p, const struct options *o, struct tally *t,
		      unsigned *kdrops)
{
	const unsigned block_size = 1u << 20;
	const unsigned frame_size = 2048;
	unsigned nblocks = (unsigned)o->ring_mb;

	int v = TPACKET_V3;
	if (setsockopt(p->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0)
		FATAL_ERRNO("PACKET_VERSION");
	struct tpacket_req3 req;
	memset(&req, 0, sizeof req);
	req.tp_block_size = block_size;
	req.tp_block_nr = nblocks;
	req.tp_frame_size = frame_size;
	req.tp_frame_nr = (block_size / frame_size) * nblocks;
	req.tp_retire_blk_tov = 4; /* ms */
	if (setsockopt(p->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0)
		FATAL_ERRNO("PACKET_RX_RING");
	size_t ring_len = (size_t)block_size * nblocks;
	uint8_t *ring = mmap(NULL, ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (ring == MAP_FAILED)
		FATAL_ERRNO("mmap(rx ring)");
	port_bind(p);

	const size_t hdr_len = sizeof(struct tpacket3_hdr);
	uint64_t start = mono_ns(), last_activity = start;
	unsigned cur = 0;

	while (!t->ended) {
		uint8_t *blk = ring + (size_t)cur * block_size;
		struct tpacket_block_desc *bd = (struct tpacket_block_desc *)blk;
		uint32_t status = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
		if (!(status & TP_STATUS_USER)) {
			struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
			poll(&pfd, 1, 20);
			if (sink_should_stop(t, o, mono_ns(), start, last_activity))
				break;
			continue;
		}
		last_activity = mono_ns();

		/* walk the block, trusting no offset that would leave it */
		uint32_t n = bd->hdr.bh1.num_pkts;
		size_t used = bd->hdr.bh1.blk_len;
		if (used > block_size)
			used = block_size;
		size_t off = bd->hdr.bh1.offset_to_first_pkt;
		for (uint32_t i = 0; i < n; i++) {
			if (off < sizeof *bd || off + hdr_len > used)
				break;
			const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)(blk + off);
			size_t mac = off + h->tp_mac;
			if (h->tp_mac >= hdr_len && mac <= used) {
				size_t have = h->tp_snaplen;
				if (have > used - mac)
					have = used - mac;
				uint64_t when = (uint64_t)h->tp_sec * 1000000000u + h->tp_nsec;
				tally_frame(t, blk + mac, have, h->tp_len, when);
			}
			if (h->tp_next_offset == 0)
				break;
			off += h->tp_next_offset;
		}
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		cur = (cur + 1) % nblocks;
		if (interrupted)
			break;
	}

	struct tpacket_stats_v3 st;
	socklen_t sl = sizeof st;
	if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0)
		*kdrops = st.tp_drops;
	munmap(ring, ring_len);
}

/* recvmmsg: one wake-up per call, up to BATCH frames copied per call. */
static void sink_mmsg(struct port *p, const struct options *o, struct tally *t,
		      unsigned *kdrops)
{
	enum { BATCH = 64, SLOT = 2048 };
	static uint8_t slots[BATCH][SLOT];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_ll from[BATCH];

	int rb = (int)o->rcvbuf;
	if (setsockopt(p->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb) < 0 &&
	    setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb) < 0)
		FATAL_ERRNO("SO_RCVBUF");
	port_bind(p);
	set_recv_timeout(p->fd, 20);

	uint64_t start = mono_ns(), last_activity = start;
	while (!t->ended) {
		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = slots[i];
			iov[i].iov_len = SLOT;
			memset(&msgs[i], 0, sizeof msgs[i]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof from[i];
		}
		/* MSG_TRUNC: msg_len is the frame's real length even if the
		 * slot held only part of it */
		int r = recvmmsg(p->fd, msgs, BATCH, MSG_WAITFORONE | MSG_TRUNC, NULL);
		uint64_t now = mono_ns();
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			FATAL_ERRNO("recvmmsg");
		if (r > 0) {
			last_activity = now;
			for (int i = 0; i < r; i++) {
				if (from[i].sll_pkttype == PACKET_OUTGOING)
					continue;
				size_t wire = msgs[i].msg_len;
				size_t have = wire < SLOT ? wire : SLOT;
				tally_frame(t, slots[i], have, wire, now);
			}
		}
		if (sink_should_stop(t, o, now, start, last_activity))
			break;
	}

	struct tpacket_stats st;
	socklen_t sl = sizeof st;
	if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0)
		*kdrops = st.tp_drops;
}

static int run_sink(const struct options *o)
{
	struct port p;
	struct tally t = { .want_runs = (int)o->runs };
	unsigned kdrops = 0;

	port_open(&p, o->ifname);
	if (o->rx_ring)
		sink_ring(&p, o, &t, &kdrops);
	else
		sink_mmsg(&p, o, &t, &kdrops);

	double window = t.frames > 1 ? (double)(t.last_ns - t.first_ns) / 1e9 : 0;
	double fps = window > 0 ? (double)(t.frames - 1) / window : 0;
	double mbps = window > 0 ? (double)t.bytes * 8 / window / 1e6 : 0;
	long long sent = t.ended ? t.sent : -1; /* unknown until every END came */
	long long lost = sent >= 0 ? sent - t.frames : -1;
	double loss_pct = sent > 0 ? 100.0 * (double)lost / (double)sent : -1;
	printf("sink if=%s rx=%s rx_frames=%ld rx_bytes=%llu window_s=%.4f rx_fps=%.0f "
	       "rx_mbps=%.1f tx_count=%lld lost=%lld loss_pct=%.3f foreign=%ld kdrops=%u "
	       "ended=%s\n",
	       o->ifname, o->rx_ring ? "ring" : "mmsg", t.frames, (unsigned long long)t.bytes, window,
	       fps, mbps, sent, lost, loss_pct, t.foreign, kdrops,
	       t.ended ? "end" : interrupted ? "signal" : t.frames ? "idle" : "nothing");
	fflush(stdout);
	return t.ended ? 0 : 1;
}

/* ----------------------------------------------------------------- blast */

static int run_blast(const struct options *o)
{
	static uint8_t frame[FRAME_MAX];
	struct port p;
	uint8_t dst[6];
	uint32_t run = new_run_id();

	if (!o->dst || parse_mac(o->dst, dst) < 0)
		fatal("blast needs --dst MAC (aa:bb:cc:dd:ee:ff)");
	port_open(&p, o->ifname);
	port_check_size(&p, o->size);
	if (o->bypass) {
		int one = 1;
		if (setsockopt(p.fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0)
			FATAL_ERRNO("PACKET_QDISC_BYPASS");
	}
	/* Bound to the probe ethertype, so the kernel takes skb->protocol from
	 * the binding instead of parsing every frame's header (a few per cent
	 * at 64 B); a reject-all filter keeps the socket from queueing frames
	 * it would never read. */
	struct sock_filter reject = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog deaf = { .len = 1, .filter = &reject };
	if (setsockopt(p.fd, SOL_SOCKET, SO_ATTACH_FILTER, &deaf, sizeof deaf) < 0)
		FATAL_ERRNO("SO_ATTACH_FILTER");
	port_bind(&p);

	struct probe pr = { .kind = K_DATA, .run = run };
	frame_build(frame, (size_t)o->size, dst, p.mac, &pr);

	/* every message of a batch points at the same frame */
	int batch = (int)o->batch;
	struct mmsghdr *msgs = calloc((size_t)batch, sizeof *msgs);
	struct iovec *iov = calloc((size_t)batch, sizeof *iov);
	if (!msgs || !iov)
		fatal("out of memory");
	for (int i = 0; i < batch; i++) {
		iov[i].iov_base = frame;
		iov[i].iov_len = (size_t)o->size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	long long sent = 0, full = 0, calls = 0;
	int pos = 0; /* first message of the batch not yet accepted */
	uint64_t t0 = mono_ns();
	uint64_t stop_at = t0 + (uint64_t)(o->secs * 1e9);
	uint64_t t1 = t0;
	while (!interrupted) {
		if (o->rate > 0 && pos == 0) {
			/* paced: a batch starts no earlier than its share of the
			 * rate allows */
			uint64_t due = t0 + (uint64_t)((double)sent * 1e9 / o->rate);
			if (mono_ns() < due) {
				struct timespec ts = { .tv_sec = (time_t)(due / 1000000000u),
						       .tv_nsec = (long)(due % 1000000000u) };
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			}
		}
		int r = sendmmsg(p.fd, msgs + pos, (unsigned)(batch - pos), 0);
		calls++;
		if (r > 0) {
			sent += r;
			pos += r;
			if (pos >= batch)
				pos = 0;
		} else if (r < 0) {
			/* no room (queue full or receiver dropped): nothing was
			 * sent, try the same frames again */
			if (errno == ENOBUFS || errno == EAGAIN)
				full++;
			else if (errno != EINTR)
				FATAL_ERRNO("sendmmsg");
		}
		t1 = mono_ns();
		if (t1 >= stop_at)
			break;
	}
	double secs = (double)(t1 - t0) / 1e9;

	/* Give the receiver a moment to empty its queue, then tell it how many
	 * frames were accepted. Several END frames, in case one is dropped;
	 * the sink stops at the first. */
	usleep(150000);
	pr.kind = K_END;
	pr.count = (uint64_t)sent;
	frame_build(frame, FRAME_MIN, dst, p.mac, &pr);
	for (int i = 0; i < 4; i++) {
		if (send_frame(p.fd, frame, FRAME_MIN) < 0)
			fprintf(stderr, "rawlimit: send END: %s\n", strerror(errno));
		usleep(25000);
	}

	printf("blast if=%s size=%ld batch=%d bypass=%d secs=%.3f tx_frames=%lld tx_fps=%.0f "
	       "tx_mbps=%.1f calls=%lld nobufs=%lld\n",
	       o->ifname, o->size, batch, o->bypass, secs, sent,
	       secs > 0 ? (double)sent / secs : 0,
	       secs > 0 ? (double)sent * (double)o->size * 8 / secs / 1e6 : 0, calls, full);
	fflush(stdout);
	free(msgs);
	free(iov);
	return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *to)
{
	fputs("usage: rawlimit MODE -i IFACE [options]   (probe ethertype 0x88B5)\n"
	      "\n"
	      "  echo      reflect ping frames to their sender until a STOP frame\n"
	      "  pingpong  -s SIZE -n N [--stop] [-w W] [--dst MAC] [--timeout-ms MS] [--busy]\n"
	      "            N timed request/reply exchanges after W warm-up ones\n"
	      "            (default W = N/10, at least 100, at most 2000); pings go to\n"
	      "            broadcast until the first reply, then to the replier's MAC\n"
	      "  sink      [--rx ring|mmsg] [--idle-ms MS] [--wait-s S] [--ring-mb M]\n"
	      "            [--rcvbuf BYTES] [--runs N]  count DATA frames of N blasts\n"
	      "            (default 1), sent at once by N blasters (a fan-in)\n"
	      "  blast     --dst MAC -s SIZE -t SECS [--bypass] [--batch B] [--rate FPS]\n"
	      "            send DATA frames as fast as possible (or FPS a second), then\n"
	      "            END with the count\n"
	      "\n"
	      "  SIZE is the Ethernet frame length including the 14-byte header, no FCS\n"
	      "  (60 .. MTU+14). Each mode prints one line of key=value words.\n",
	      to);
}

static long num_arg(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		fatal("%s wants an integer in %ld..%ld, not '%s'", opt, lo, hi, s);
	return v;
}

static double real_arg(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= lo && v <= hi))
		fatal("%s wants a number in %g..%g, not '%s'", opt, lo, hi, s);
	return v;
}

int main(int argc, char **argv)
{
	struct options o = {
		.size = 64,
		.rounds = 10000,
		.warmup = -1,
		.timeout_ms = 200,
		.rx_ring = 1,
		.idle_ms = 2000,
		.wait_s = 30,
		.ring_mb = 64,
		.runs = 1,
		.rcvbuf = 8 << 20,
		.secs = 3,
		.batch = 64,
	};
	enum {
		OPT_STOP = 0x100, OPT_BUSY, OPT_DST, OPT_TIMEOUT, OPT_RX, OPT_IDLE, OPT_WAIT,
		OPT_RING, OPT_RCVBUF, OPT_BYPASS, OPT_BATCH, OPT_RUNS, OPT_RATE,
	};
	static const struct option longopts[] = {
		{ "iface", required_argument, NULL, 'i' },
		{ "size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "time", required_argument, NULL, 't' },
		{ "stop", no_argument, NULL, OPT_STOP },
		{ "busy", no_argument, NULL, OPT_BUSY },
		{ "dst", required_argument, NULL, OPT_DST },
		{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
		{ "rx", required_argument, NULL, OPT_RX },
		{ "idle-ms", required_argument, NULL, OPT_IDLE },
		{ "wait-s", required_argument, NULL, OPT_WAIT },
		{ "ring-mb", required_argument, NULL, OPT_RING },
		{ "rcvbuf", required_argument, NULL, OPT_RCVBUF },
		{ "bypass", no_argument, NULL, OPT_BYPASS },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "runs", required_argument, NULL, OPT_RUNS },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	if (argc < 2 || argv[1][0] == '-') {
		usage(argc >= 2 && !strcmp(argv[1], "-h") ? stdout : stderr);
		return argc >= 2 && !strcmp(argv[1], "-h") ? 0 : 2;
	}
	const char *mode = argv[1];
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "i:s:n:w:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o.ifname = optarg; break;
		case 's': o.size = num_arg("-s", optarg, FRAME_MIN, FRAME_MAX); break;
		case 'n': o.rounds = num_arg("-n", optarg, 1, 100000000); break;
		case 'w': o.warmup = num_arg("-w", optarg, 0, 100000000); break;
		case 't': o.secs = real_arg("-t", optarg, 1e-3, 3600); break;
		case OPT_STOP: o.stop = 1; break;
		case OPT_BUSY: o.busy = 1; break;
		case OPT_DST: o.dst = optarg; break;
		case OPT_TIMEOUT: o.timeout_ms = num_arg("--timeout-ms", optarg, 1, 60000); break;
		case OPT_RX:
			if (!strcmp(optarg, "ring"))
				o.rx_ring = 1;
			else if (!strcmp(optarg, "mmsg"))
				o.rx_ring = 0;
			else
				fatal("--rx wants ring or mmsg, not '%s'", optarg);
			break;
		case OPT_IDLE: o.idle_ms = num_arg("--idle-ms", optarg, 1, 3600000); break;
		case OPT_WAIT: o.wait_s = num_arg("--wait-s", optarg, 1, 86400); break;
		case OPT_RING: o.ring_mb = num_arg("--ring-mb", optarg, 2, 1024); break;
		case OPT_RCVBUF: o.rcvbuf = num_arg("--rcvbuf", optarg, 4096, INT_MAX); break;
		case OPT_BYPASS: o.bypass = 1; break;
		case OPT_BATCH: o.batch = num_arg("--batch", optarg, 1, 1024); break;
		case OPT_RUNS: o.runs = num_arg("--runs", optarg, 1, MAX_RUNS); break;
		case OPT_RATE: o.rate = real_arg("--rate", optarg, 1, 1e8); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		fatal("unexpected argument '%s'", argv[optind]);
	if (!o.ifname)
		fatal("-i IFACE is required");

	/* No SA_RESTART: a blocked receive returns EINTR and the mode prints
	 * its result line before exiting. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (!strcmp(mode, "echo"))
		return run_echo(&o);
	if (!strcmp(mode, "pingpong"))
		return run_pingpong(&o);
	if (!strcmp(mode, "sink"))
		return run_sink(&o);
	if (!strcmp(mode, "blast"))
		return run_blast(&o);
	usage(stderr);
	fatal("unknown mode '%s'", mode);
}
