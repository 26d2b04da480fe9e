"""A stand-in for systemd's notify socket: binds an AF_UNIX datagram socket at argv[1] and prints
every message as one JSON line {"t": seconds, "pid": sender, "fields": {...}}. File descriptors
sent along (systemd-notify's BARRIER=1 pipe) are closed at once, which is what releases the
sender, exactly as the service manager does."""
import array, json, os, socket, struct, sys, time

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"listening": path}), flush=True)
fd_size = array.array("i").itemsize
while True:
    data, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(64 * fd_size) + socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - (len(payload) % fd_size)])
            for fd in fds:
                os.close(fd)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, _uid, _gid = struct.unpack("iII", payload[:12])
    fields = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key] = value
    print(json.dumps({"t": time.time(), "pid": pid, "fields": fields}), flush=True)
