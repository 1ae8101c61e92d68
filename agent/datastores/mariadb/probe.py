"""Is the server accepting connections? Log in over its Unix socket with the
client/server protocol (stdlib only: bootstrap runs before heavy imports) as the
admin account, authenticated by unix_socket, and quit.

A bare connect() is not enough: the socket accepts into its backlog before the
server serves anyone. Reading only the greeting and hanging up would make the
server log an 'Aborted connection' warning at every start; a full login and
COM_QUIT leaves the error log clean, and proves the agent's own access works."""
from __future__ import annotations

import socket
import struct

CLIENT_LONG_PASSWORD = 0x1
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
UTF8MB4_GENERAL_CI = 45
COM_QUIT = b"\x01"
ACCESS_DENIED = (1045, 1698)  # wrong password; no password where one is needed


class ServerError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    header = _read_exactly(sock, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    return header[3], _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send_packet(sock: socket.socket, seq: int, payload: bytes) -> None:
    sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)


def _raise_if_error(payload: bytes) -> None:
    if payload[:1] == b"\xff":
        code = struct.unpack("<H", payload[1:3])[0]
        message = payload[3:]
        if message[:1] == b"#":  # '#' and a five-character SQL state
            message = message[6:]
        raise ServerError(code, message.decode(errors="replace"))


def login(socket_path: str, user: str, timeout: float) -> None:
    """Returns once logged in; raises OSError when nothing answers on the socket
    (yet), ServerError when the server refuses."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        seq, greeting = _read_packet(sock)
        _raise_if_error(greeting)  # e.g. too many connections
        caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
        # no password: the account's unix_socket alternative admits the peer's OS user
        response = (struct.pack("<IIB23x", caps, 1 << 24, UTF8MB4_GENERAL_CI) + user.encode() + b"\0"
                    + b"\0" + b"mysql_native_password\0")
        seq += 1
        _send_packet(sock, seq, response)
        for _ in range(4):
            seq, reply = _read_packet(sock)
            _raise_if_error(reply)
            if reply[:1] == b"\x00":  # OK: logged in
                _send_packet(sock, 0, COM_QUIT)
                return
            # an authentication switch or more data: no secret to give, answer empty
            seq += 1
            _send_packet(sock, seq, b"")
        raise ServerError(0, "the login did not finish")
