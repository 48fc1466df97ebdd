/*
 * http_load.c - a small HTTP/1.1 load generator for zinv-server, for
 * machines without wrk: `puts` keep-alive clients send the PUT body of
 * put.lua (written by bench_http_setup.py) while `gets` clients read one
 * path, each client waiting for its answer before the next request; prints
 * requests per second of both after `seconds`.
 *
 *     cc -O2 -pthread -o http_load examples/zinv-server/http_load.c
 *     ./http_load PORT SECONDS PUTS GETS PUT_BODY_FILE GET_PATH
 *
 * A "GET under write load" figure is GETS > 0 with PUTS > 0; the read-only
 * rate is PUTS = 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, seconds;
static char put_req[8192], get_req[1024];
static size_t put_len, get_len;
static volatile int stop;

struct client {
	const char *req;
	size_t len;
	long done, failed;
};

static int connect_to(void)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("http_load: connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Read one response (headers + Content-Length body); its status, or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	char *end;
	long body;
	int status;

	for (;;) {
		ssize_t n = read(fd, buf + have, cap - 1 - have);

		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
	}
	status = atoi(buf + 9);
	body = 0;
	for (char *h = buf; h < end; h++)
		if (strncasecmp(h, "\r\ncontent-length:", 17) == 0) {
			body = atol(h + 17);
			break;
		}
	end += 4;
	body -= (long)(buf + have - end);
	while (body > 0) {
		ssize_t n = read(fd, buf, cap < (size_t)body ? cap : (size_t)body);

		if (n <= 0)
			return -1;
		body -= n;
	}
	return status;
}

static void *client_main(void *p)
{
	struct client *c = p;
	static _Thread_local char buf[1 << 16];
	int fd = connect_to();

	while (!stop) {
		if (write(fd, c->req, c->len) != (ssize_t)c->len) {
			c->failed++;
			break;
		}
		if (read_response(fd, buf, sizeof(buf)) == 200)
			c->done++;
		else
			c->failed++;
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct client cl[256];
	pthread_t th[256];
	int puts_n, gets_n, i;
	long put_done = 0, get_done = 0, failed = 0;
	char body[6000];
	size_t blen;
	FILE *f;

	if (argc != 7) {
		fprintf(stderr, "usage: http_load PORT SECONDS PUTS GETS PUT_BODY_FILE GET_PATH\n");
		return 2;
	}
	port = atoi(argv[1]);
	seconds = atoi(argv[2]);
	puts_n = atoi(argv[3]);
	gets_n = atoi(argv[4]);
	if (puts_n + gets_n > 256 || !(f = fopen(argv[5], "r"))) {
		fprintf(stderr, "http_load: bad arguments\n");
		return 2;
	}
	blen = fread(body, 1, sizeof(body) - 1, f);
	fclose(f);
	body[blen] = '\0';
	put_len = (size_t)snprintf(put_req, sizeof(put_req),
	        "PUT /organizations/self/inventory HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	        "Authorization: Bearer bench\r\nContent-Type: application/json\r\n"
	        "Content-Length: %zu\r\n\r\n%s", blen, body);
	get_len = (size_t)snprintf(get_req, sizeof(get_req),
	        "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer bench\r\n\r\n",
	        argv[6]);
	for (i = 0; i < puts_n + gets_n; i++) {
		cl[i] = (struct client){ i < puts_n ? put_req : get_req,
		                         i < puts_n ? put_len : get_len, 0, 0 };
		pthread_create(&th[i], NULL, client_main, &cl[i]);
	}
	sleep((unsigned)seconds);
	stop = 1;
	for (i = 0; i < puts_n + gets_n; i++) {
		pthread_join(th[i], NULL);
		if (i < puts_n)
			put_done += cl[i].done;
		else
			get_done += cl[i].done;
		failed += cl[i].failed;
	}
	printf("PUT %d clients %.0f req/s   GET %d clients %.0f req/s   failed %ld\n", puts_n,
	       (double)put_done / seconds, gets_n, (double)get_done / seconds, failed);
	return 0;
}
