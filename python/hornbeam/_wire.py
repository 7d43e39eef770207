"""The Python half of the worker wire protocol.

The protocol is described once, in the Go package internal/wire (wire.go);
this module mirrors its constants and framing. A frame is a 9-byte header
(payload length uint32, type uint8, id uint32, all big-endian) followed by the
payload. RequestFD and File frames carry one descriptor as SCM_RIGHTS, Fork
frames three.

A worker has two sockets to the server: the request socket (Conn) and the
state socket (CallConn), which carries only StateCall frames and their
StateReply, one call at a time.
"""

import array
import os
import socket
import struct
import threading

# server -> worker
REQUEST = 1
REQUEST_FD = 2
STATE_REPLY = 3
SHUTDOWN = 4
FORK = 5
FORK_EMBEDDED = 6
# worker -> server
READY = 16
START = 17
BODY = 18
FILE = 19
END = 20
ERROR = 21
HINTS = 22
STATE_CALL = 23
FORKED = 24
CHILD_EXIT = 25

HEADER = struct.Struct(">IBI")
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 64 << 20
_ANC_SPACE = socket.CMSG_SPACE(4 * 16)
_RECV_SIZE = 64 << 10
_CALL_READ = 4096  # first read of a state reply: most fit; os.read allocates this much


class Conn:
    """A framed connection to the server: one reader, many writers."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0
        self.scratch = bytearray(_RECV_SIZE)  # recvmsg_into target: no allocation per read
        self.view = memoryview(self.scratch)
        self.fds = []  # received descriptors not yet claimed, oldest first
        self.wlock = threading.Lock()

    def read_frame(self):
        """Return (type, id, payload, fd) for the next frame, or None at EOF."""
        buf = self.buf
        # Offsets are relative to self.pos: _fill may compact the buffer.
        while len(buf) - self.pos < HEADER_SIZE:
            if not self._fill():
                return None
        n, typ, rid = HEADER.unpack_from(buf, self.pos)
        while len(buf) - self.pos < HEADER_SIZE + n:
            if not self._fill():
                return None
        start = self.pos + HEADER_SIZE
        payload = bytes(buf[start:start + n])
        self.pos = start + n
        if self.pos == len(buf):
            del buf[:]
            self.pos = 0
        fd = None
        if typ == REQUEST_FD:
            fd = self.fds.pop(0)
        elif typ == FORK:
            fd = (self.fds.pop(0), self.fds.pop(0), self.fds.pop(0))
        elif typ == FORK_EMBEDDED:
            fd = (self.fds.pop(0), self.fds.pop(0), self.fds.pop(0), self.fds.pop(0))
        return typ, rid, payload, fd

    def _fill(self):
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        # recvmsg, not recv: a descriptor the server attaches (RequestFD,
        # Fork) would be dropped by a read without room for it.
        n, anc, _flags, _addr = self.sock.recvmsg_into([self.view], _ANC_SPACE)
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
                self.fds.extend(fds)
        if not n:
            return False
        self.buf += self.view[:n]
        return True

    def send(self, data):
        """Send bytes already framed with frame() (one or several frames)."""
        with self.wlock:
            self.sock.sendall(data)

    def send_parts(self, parts):
        """Send a list of byte strings (whole frames, or a frame header and its
        payload apart) as one write: sendmsg gathers them, so a large body is
        not copied into a joined buffer first."""
        if len(parts) > 512:  # sendmsg takes at most IOV_MAX (1024) buffers
            return self.send(b"".join(parts))
        with self.wlock:
            n = self.sock.sendmsg(parts)
            for p in parts:  # a partial write: send the rest
                if n >= len(p):
                    n -= len(p)
                    continue
                self.sock.sendall(memoryview(p)[n:])
                n = 0

    def send_fd(self, data, fd):
        """Send framed bytes with fd attached to the first byte."""
        with self.wlock:
            n = self.sock.sendmsg(
                [data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
            )
            if n < len(data):
                self.sock.sendall(data[n:])


class CallConn:
    """The state socket: a blocking descriptor, one call at a time.

    A call is a synchronous round trip, so this is plain os.write and
    os.read on the descriptor: the fewest Python steps between sending the
    call and sleeping in read(2) until the reply wakes us."""

    def __init__(self, fd):
        os.set_blocking(fd, True)
        self.fd = fd
        self.lock = threading.Lock()  # one call at a time across threads

    def call(self, payload):
        """Send a StateCall frame and return its StateReply payload."""
        data = HEADER.pack(len(payload), STATE_CALL, 0) + payload
        fd = self.fd
        with self.lock:
            n = os.write(fd, data)
            if n < len(data):  # only for large values
                view = memoryview(data)
                while n < len(data):
                    n += os.write(fd, view[n:])
            buf = os.read(fd, _CALL_READ)
            while len(buf) < HEADER_SIZE:
                more = os.read(fd, _CALL_READ)
                if not more:
                    raise ConnectionError("hornbeam server went away")
                buf += more
            size, typ, _ = HEADER.unpack_from(buf)
            if typ != STATE_REPLY:
                raise ConnectionError("hornbeam: frame type %d on the state socket" % typ)
            end = HEADER_SIZE + size
            if len(buf) < end:
                buf = bytearray(buf)
                while len(buf) < end:
                    more = os.read(fd, end - len(buf))
                    if not more:
                        raise ConnectionError("hornbeam server went away")
                    buf += more
            return bytes(buf[HEADER_SIZE:end])

    def close(self):
        os.close(self.fd)


def frame(typ, rid, payload=b""):
    """Return one frame as bytes."""
    return HEADER.pack(len(payload), typ, rid) + payload
