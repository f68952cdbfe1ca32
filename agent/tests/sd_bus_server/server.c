/* systemd's own D-Bus server code (sd-bus, from libsystemd) answering on a unix socket
 * as PID 1 answers on /run/systemd/private: server mode, no bus daemon, an sd-event loop
 * that calls sd_bus_process() once per event. The handshake is run by hand, one step
 * every 300 ms, so a client that sends BEGIN only after reading OK has its first call
 * arrive in the same read as BEGIN: the condition that hung debian-node's first boot.
 *
 * Usage: server SOCKET_PATH. Prints "ready" once listening, serves one connection and
 * answers Echo(s) -> s on /test, interface test.Echo. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

static int echo(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *s;
        int r = sd_bus_message_read(m, "s", &s);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "s", s);
}

static const sd_bus_vtable vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Echo", "s", "s", echo, 0),
        SD_BUS_VTABLE_END
};

static int fail(const char *what, int r) {
        fprintf(stderr, "%s: %s\n", what, strerror(r < 0 ? -r : r));
        return 1;
}

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        sd_id128_t id;
        sd_bus *bus = NULL;
        sd_event *event = NULL;
        int fd, cfd, r;

        if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path))
                return 2;
        strcpy(sa.sun_path, argv[1]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
                return fail("listen", errno);
        printf("ready\n");
        fflush(stdout);
        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return fail("accept", errno);
        if ((r = sd_bus_new(&bus)) < 0 || (r = sd_bus_set_fd(bus, cfd, cfd)) < 0)
                return fail("sd_bus_set_fd", r);
        if ((r = sd_id128_randomize(&id)) < 0 || (r = sd_bus_set_server(bus, 1, id)) < 0)
                return fail("sd_bus_set_server", r);
        if ((r = sd_bus_set_trusted(bus, 1)) < 0 || (r = sd_bus_start(bus)) < 0)
                return fail("sd_bus_start", r);
        if ((r = sd_bus_add_object_vtable(bus, NULL, "/test", "test.Echo", vtable, NULL)) < 0)
                return fail("vtable", r);
        /* The handshake, slowly: one sd_bus_process() per step, 300 ms apart. */
        while (sd_bus_is_ready(bus) <= 0) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return fail("handshake", r);
                if (r == 0 && (r = sd_bus_wait(bus, 1000000)) < 0)
                        return fail("wait", r);
                usleep(300000);
        }
        /* Then as PID 1: an sd-event loop. */
        if ((r = sd_event_default(&event)) < 0 || (r = sd_bus_attach_event(bus, event, 0)) < 0)
                return fail("sd_event", r);
        r = sd_event_loop(event);
        return r < 0 ? fail("loop", r) : 0;
}
