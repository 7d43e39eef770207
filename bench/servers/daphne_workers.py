#!/usr/bin/python3
"""daphne_workers.py N HOST:PORT [daphne flags...]: N daphne processes on one
listening socket, the way daphne's documentation runs several of them (a
process manager opens the socket, each daphne gets it with --fd). This
process opens 127.0.0.1:PORT (backlog 2048), forks N-1 children that exec
daphne, then execs daphne itself, so the process tree is N daphnes and
nothing else: the benchmark's RSS and CPU figures count only daphne.
"""

import os
import socket
import sys


def main():
    n = int(sys.argv[1])
    host, port = sys.argv[2].rsplit(":", 1)
    rest = sys.argv[3:]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(2048)
    fd = s.fileno()
    os.set_inheritable(fd, True)
    argv = ["/usr/bin/python3", "/usr/bin/daphne", "--fd", str(fd)] + rest
    for _ in range(n - 1):
        if os.fork() == 0:
            os.execv(argv[0], argv)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
