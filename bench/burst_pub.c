/* A burst of contract readings, as fast as the broker takes them (or at a fixed rate).
 *
 *   burst_pub HOST PORT QOS COUNT DEVICES TOPIC_FMT [RATE] [TS0_MS] [LEL]
 *
 * TOPIC_FMT has one %d for the device number, e.g. "safety/bench/gas-%d/telemetry".
 * Message i goes to device i % DEVICES with payload {"ts": TS0_MS + i, "values": {"lel": x}},
 * so every (device, ts) is unique and the receiver can check that nothing was lost or doubled.
 * RATE 0 (the default) publishes as fast as libmosquitto can hand messages to the broker;
 * otherwise messages are paced to RATE per second. LEL, if given, is every message's value
 * (a storm: every detector crossing a threshold at once); otherwise values cycle 0.0..4.9. Exits once every message has been written
 * (QoS 0) or acknowledged (QoS 1). Prints "published N in S s" on stdout.
 *
 * Built by bench/floors.py with: cc -O2 -o burst_pub burst_pub.c -lmosquitto
 */
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile long acked = 0;

static void on_publish(struct mosquitto *m, void *obj, int mid) {
    (void)m; (void)obj; (void)mid;
    __atomic_add_fetch(&acked, 1, __ATOMIC_RELAXED);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT QOS COUNT DEVICES TOPIC_FMT [RATE] [TS0_MS] [LEL]\n",
                argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    int qos = atoi(argv[3]);
    long count = atol(argv[4]);
    int devices = atoi(argv[5]);
    const char *fmt = argv[6];
    double rate = argc > 7 ? atof(argv[7]) : 0.0;
    long long ts0 = argc > 8 ? atoll(argv[8]) : wall_ms();
    double fixed_lel = argc > 9 ? atof(argv[9]) : -1.0;

    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof id, "burst-pub-%d", (int)getpid());
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    if (!m) { perror("mosquitto_new"); return 1; }
    mosquitto_max_inflight_messages_set(m, 0);  /* no client-side cap: the broker sets the pace */
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    if (mosquitto_connect(m, host, port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "cannot connect to %s:%d\n", host, port);
        return 1;
    }
    if (mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "loop_start\n"); return 1; }

    char topic[256], payload[128];
    double t0 = now_s();
    for (long i = 0; i < count; i++) {
        if (rate > 0) {
            double due = t0 + i / rate;
            double wait = due - now_s();
            if (wait > 0) usleep((useconds_t)(wait * 1e6));
        } else {
            /* Keep libmosquitto's own queue bounded so memory stays flat on huge bursts. */
            while (i - __atomic_load_n(&acked, __ATOMIC_RELAXED) > 1000) usleep(200);
        }
        snprintf(topic, sizeof topic, fmt, (int)(i % devices));
        int n = snprintf(payload, sizeof payload, "{\"ts\": %lld, \"values\": {\"lel\": %.1f}}",
                         ts0 + i, fixed_lel >= 0 ? fixed_lel : (double)(i % 50) / 10.0);
        int rc;
        while ((rc = mosquitto_publish(m, NULL, topic, n, payload, qos, false)) == MOSQ_ERR_NOMEM)
            usleep(1000);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "publish %ld failed: %s\n", i, mosquitto_strerror(rc));
            return 1;
        }
    }
    double deadline = now_s() + 600;
    while (__atomic_load_n(&acked, __ATOMIC_RELAXED) < count && now_s() < deadline) usleep(1000);
    double elapsed = now_s() - t0;
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    printf("published %ld in %.3f s\n", (long)acked, elapsed);
    return acked == count ? 0 : 1;
}
