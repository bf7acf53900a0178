"""MQTT control packets, encoded and decoded as OASIS MQTT 3.1.1 (2014) and MQTT 5.0 (2019)
specify them: the few a hub and an agent exchange with their broker.

Section numbers below are the 3.1.1 specification's, with the 5.0 one where it differs
("5.0 3.1.2.11"). Pure functions on bytes; the connection is in ``transport.client``.
Anything a broker sends that breaks the specification is a :class:`ProtocolError`, which
ends the connection (3.1.1 section 4.8, 5.0 section 4.13).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# Control packet types, the high nibble of a fixed header's first byte (section 2.2.1).
CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
PUBREC, PUBREL, PUBCOMP = 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15

#: Section 2.2.3: a Remaining Length takes at most four bytes, so no packet is larger.
MAX_REMAINING_LENGTH = 268_435_455

PINGREQ_PACKET = b"\xc0\x00"  # section 3.12
DISCONNECT_PACKET = b"\xe0\x00"  # section 3.14; 5.0 3.14.2.1: no reason code means 0x00

_PUBACK = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class MqttError(Exception):
    """The broker link failed: it could not be made, the broker refused or ended it, or the
    connection broke. The reconnect loop (``transport.mqtt.stay_connected``) waits and
    connects again."""


class ProtocolError(MqttError):
    """A packet from the broker that the MQTT specification does not allow."""


# -- the data representations (section 1.5) ------------------------------------------------


def varint(value: int) -> bytes:
    """A Remaining Length (section 2.2.3), or a 5.0 Variable Byte Integer (5.0 1.5.5)."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"{value} cannot be a remaining length (0 to {MAX_REMAINING_LENGTH})")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes | bytearray, pos: int, end: int) -> tuple[int, int]:
    """The Variable Byte Integer at ``pos`` and the position after it (5.0 1.5.5).

    ProtocolError if it runs past ``end`` or over four bytes (MQTT-1.5.5-1).
    """
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= end:
            raise ProtocolError("a variable byte integer runs past the end of its packet")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise ProtocolError("a variable byte integer is longer than four bytes")


def utf8(text: str) -> bytes:
    """A UTF-8 Encoded String (section 1.5.3): two length bytes, then at most 65,535 bytes,
    without U+0000 (MQTT-1.5.3-2)."""
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise ValueError(f"a {len(raw)}-byte string is over MQTT's 65,535-byte limit")
    if b"\x00" in raw:
        raise ValueError("an MQTT string cannot contain U+0000")
    return _U16.pack(len(raw)) + raw


def read_utf8(data: bytes | bytearray, pos: int, end: int) -> tuple[str, int]:
    if pos + 2 > end:
        raise ProtocolError("a string runs past the end of its packet")
    length = (data[pos] << 8) | data[pos + 1]
    start, pos = pos + 2, pos + 2 + length
    if pos > end:
        raise ProtocolError("a string runs past the end of its packet")
    try:
        return bytes(data[start:pos]).decode(), pos
    except UnicodeDecodeError:
        raise ProtocolError("a string is not valid UTF-8 (MQTT-1.5.3-1)") from None


# -- 5.0 properties (5.0 section 2.2.2) ----------------------------------------------------

SESSION_EXPIRY_INTERVAL = 0x11
SERVER_KEEP_ALIVE = 0x13
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
MAXIMUM_QOS = 0x24
MAXIMUM_PACKET_SIZE = 0x27

# 5.0 section 2.2.2.2: each property identifier and the type of its value.
_BYTE, _TWO, _FOUR, _VAR, _STRING, _BINARY, _PAIR = range(7)
PROPERTY_TYPES = {
    0x01: _BYTE,  # Payload Format Indicator
    0x02: _FOUR,  # Message Expiry Interval
    0x03: _STRING,  # Content Type
    0x08: _STRING,  # Response Topic
    0x09: _BINARY,  # Correlation Data
    0x0B: _VAR,  # Subscription Identifier
    0x11: _FOUR,  # Session Expiry Interval
    0x12: _STRING,  # Assigned Client Identifier
    0x13: _TWO,  # Server Keep Alive
    0x15: _STRING,  # Authentication Method
    0x16: _BINARY,  # Authentication Data
    0x17: _BYTE,  # Request Problem Information
    0x18: _FOUR,  # Will Delay Interval
    0x19: _BYTE,  # Request Response Information
    0x1A: _STRING,  # Response Information
    0x1C: _STRING,  # Server Reference
    0x1F: _STRING,  # Reason String
    0x21: _TWO,  # Receive Maximum
    0x22: _TWO,  # Topic Alias Maximum
    0x23: _TWO,  # Topic Alias
    0x24: _BYTE,  # Maximum QoS
    0x25: _BYTE,  # Retain Available
    0x26: _PAIR,  # User Property
    0x27: _FOUR,  # Maximum Packet Size
    0x28: _BYTE,  # Wildcard Subscription Available
    0x29: _BYTE,  # Subscription Identifier Available
    0x2A: _BYTE,  # Shared Subscription Available
}

Property = int | str | bytes | tuple[str, str]


def properties(values: dict[int, int]) -> bytes:
    """A property list of integer properties, its length first (5.0 2.2.2.1)."""
    body = bytearray()
    for ident, value in values.items():
        kind = PROPERTY_TYPES[ident]
        body.append(ident)
        if kind == _BYTE:
            body.append(value)
        elif kind == _TWO:
            body += _U16.pack(value)
        elif kind == _FOUR:
            body += _U32.pack(value)
        else:
            raise ValueError(f"property 0x{ident:02x} does not take an integer")
    return varint(len(body)) + bytes(body)


def read_properties(
    data: bytes | bytearray, pos: int, end: int
) -> tuple[dict[int, list[Property]], int]:
    """The property list at ``pos`` (each identifier's values, in order) and the position
    after it. ProtocolError for an unknown identifier or a value past the list's end."""
    length, pos = read_varint(data, pos, end)
    stop = pos + length
    if stop > end:
        raise ProtocolError("a property list runs past the end of its packet")
    found: dict[int, list[Property]] = {}
    while pos < stop:
        ident, pos = read_varint(data, pos, stop)
        kind = PROPERTY_TYPES.get(ident)
        value: Property
        if kind is None:
            raise ProtocolError(f"unknown property identifier 0x{ident:02x}")
        if kind == _BYTE or kind == _TWO or kind == _FOUR:
            size = 1 if kind == _BYTE else 2 if kind == _TWO else 4
            if pos + size > stop:
                raise ProtocolError("a property value runs past the end of its list")
            value, pos = int.from_bytes(data[pos : pos + size], "big"), pos + size
        elif kind == _VAR:
            value, pos = read_varint(data, pos, stop)
        elif kind == _STRING:
            value, pos = read_utf8(data, pos, stop)
        elif kind == _BINARY:
            if pos + 2 > stop:
                raise ProtocolError("a property value runs past the end of its list")
            length = (data[pos] << 8) | data[pos + 1]
            value, pos = bytes(data[pos + 2 : pos + 2 + length]), pos + 2 + length
            if pos > stop:
                raise ProtocolError("a property value runs past the end of its list")
        else:
            name, pos = read_utf8(data, pos, stop)
            text, pos = read_utf8(data, pos, stop)
            value = (name, text)
        found.setdefault(ident, []).append(value)
    return found, stop


# -- packets a client sends ----------------------------------------------------------------


def fixed(first: int, body: bytes) -> bytes:
    """A packet: the fixed header (section 2.2) and ``body``."""
    return bytes((first,)) + varint(len(body)) + body


@dataclass(frozen=True)
class Connect:
    client_id: str
    keepalive: int
    mqtt5: bool = False
    clean: bool = False
    """Clean Session (3.1.2.4) / 5.0 Clean Start (5.0 3.1.2.4)."""
    username: str | None = None
    password: str | None = None
    session_expiry_s: int = 0
    """5.0 only (5.0 3.1.2.11.2): how long the broker keeps the session after a disconnect."""
    max_packet_bytes: int = 0
    """5.0 only (5.0 3.1.2.11.4): the broker must not send larger packets; 0 for no limit."""

    def encode(self) -> bytes:
        """Section 3.1: variable header (protocol name, level, flags, keep alive, 5.0
        properties), then the payload (client id, user name, password)."""
        if not 0 <= self.keepalive <= 0xFFFF:
            raise ValueError("keep alive is 0 to 65,535 seconds (section 3.1.2.10)")
        flags = 0x02 if self.clean else 0
        username = self.username
        if self.password is not None and username is None and not self.mqtt5:
            username = ""  # 3.1.1 has no password without a user name (MQTT-3.1.2-22)
        payload = utf8(self.client_id)
        if username is not None:
            flags |= 0x80
            payload += utf8(username)
        if self.password is not None:
            flags |= 0x40
            password = self.password.encode()
            payload += _U16.pack(len(password)) + password  # Binary Data (section 1.5.3)
        header = b"\x00\x04MQTT" + bytes((5 if self.mqtt5 else 4, flags))
        header += _U16.pack(self.keepalive)
        if self.mqtt5:
            props = {SESSION_EXPIRY_INTERVAL: self.session_expiry_s}
            if self.max_packet_bytes:
                props[MAXIMUM_PACKET_SIZE] = self.max_packet_bytes
            header += properties(props)
        return fixed(CONNECT << 4, header + payload)


def subscribe(packet_id: int, topic_filter: str, qos: int, *, mqtt5: bool) -> bytes:
    """Section 3.8: fixed header flags 0b0010 (MQTT-3.8.1-1), one filter and its maximum
    QoS (in 5.0 the low bits of its Subscription Options, 5.0 3.8.3.1)."""
    if qos not in (0, 1):
        raise ValueError("this client subscribes at QoS 0 or 1")
    body = _U16.pack(packet_id) + (b"\x00" if mqtt5 else b"") + utf8(topic_filter)
    return fixed(0x82, body + bytes((qos,)))


def publish(
    topic: bytes, payload: bytes, qos: int, packet_id: int, *, mqtt5: bool, retain: bool = False
) -> bytes:
    """Section 3.3, with ``topic`` already a UTF-8 Encoded String (:func:`utf8`): topic,
    packet identifier for QoS 1, an empty 5.0 property list, the payload."""
    first = 0x30 | (qos << 1) | retain
    head = topic + _U16.pack(packet_id) if qos else topic
    if mqtt5:
        head += b"\x00"
    return bytes((first,)) + varint(len(head) + len(payload)) + head + payload


def puback(packet_id: int) -> bytes:
    """Section 3.4; in 5.0 a Remaining Length of 2 means reason 0x00, Success (5.0 3.4.2.1)."""
    return _PUBACK.pack(0x40, 2, packet_id)


# -- packets a broker sends ----------------------------------------------------------------

# The fixed header flags each packet type from a broker must have (section 2.2.2); PUBLISH
# carries its own and a client never receives the others.
FIXED_FLAGS = {CONNACK: 0, PUBACK: 0, SUBACK: 0, UNSUBACK: 0, PINGRESP: 0, DISCONNECT: 0}

CONNECT_REFUSED_311 = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

# 5.0 section 2.4: the reason codes a broker sends in CONNACK, PUBACK, SUBACK, DISCONNECT.
REASONS_5 = {
    0x00: "normal disconnection",
    0x04: "disconnect with will message",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}


def reason(code: int, props: dict[int, list[Property]] | None = None) -> str:
    """A 5.0 reason code in words, with the broker's Reason String if it sent one."""
    text = REASONS_5.get(code, f"reason code 0x{code:02x}")
    said = (props or {}).get(REASON_STRING)
    return f"{text} ({said[0]!s})" if said else text


@dataclass(frozen=True)
class Connack:
    session_present: bool
    code: int
    """0 when the connection is accepted."""
    refusal: str = ""
    receive_maximum: int = 65_535
    """5.0: QoS 1 publishes the broker takes unacknowledged at once (5.0 3.2.2.3.3)."""
    server_keepalive: int | None = None
    """5.0: the keep alive the client must use instead of its own (5.0 3.2.2.3.14)."""
    max_packet_bytes: int = 0
    """5.0: the largest packet the broker accepts; 0 for no limit (5.0 3.2.2.3.6)."""
    properties: dict[int, list[Property]] = field(default_factory=dict)


def read_connack(body: bytes, *, mqtt5: bool) -> Connack:
    """Section 3.2 (5.0 3.2): acknowledge flags, then the return (5.0: reason) code."""
    if len(body) < 2 or (not mqtt5 and len(body) != 2):
        raise ProtocolError(f"a CONNACK of {len(body)} bytes")
    if body[0] & 0xFE:
        raise ProtocolError("a CONNACK with reserved flags set (MQTT-3.2.2-1)")
    present, code = bool(body[0] & 1), body[1]
    if not mqtt5:
        if code > 5:
            raise ProtocolError(f"a CONNACK with return code {code} (section 3.2.2.3)")
        return Connack(present, code, CONNECT_REFUSED_311.get(code, ""))
    props, _ = read_properties(body, 2, len(body)) if len(body) > 2 else ({}, 2)
    receive = props.get(RECEIVE_MAXIMUM, [65_535])[0]
    if receive == 0:
        raise ProtocolError("a CONNACK with a Receive Maximum of 0 (5.0 3.2.2.3.3)")
    keep = props.get(SERVER_KEEP_ALIVE)
    assert isinstance(receive, int)
    size = props.get(MAXIMUM_PACKET_SIZE, [0])[0]
    assert isinstance(size, int)
    return Connack(
        present,
        code,
        reason(code, props) if code >= 0x80 else "",
        receive,
        int(keep[0]) if keep and isinstance(keep[0], int) else None,
        size,
        props,
    )


def read_ack(body: bytes, *, mqtt5: bool) -> tuple[int, int]:
    """A PUBACK's packet identifier and reason code (section 3.4; 5.0 3.4.2: the reason
    code and properties may be left out, meaning Success)."""
    if len(body) < 2 or (not mqtt5 and len(body) != 2):
        raise ProtocolError(f"a PUBACK of {len(body)} bytes")
    packet_id = (body[0] << 8) | body[1]
    if len(body) > 3:
        read_properties(body, 3, len(body))
    return packet_id, body[2] if len(body) > 2 else 0


def read_suback(body: bytes, *, mqtt5: bool) -> tuple[int, list[int], str]:
    """Section 3.9: the packet identifier, one return code per filter (0-2: the granted QoS,
    0x80 and up: refused), and (5.0) the broker's Reason String."""
    if len(body) < 3:
        raise ProtocolError(f"a SUBACK of {len(body)} bytes")
    packet_id, pos = (body[0] << 8) | body[1], 2
    said = ""
    if mqtt5:
        props, pos = read_properties(body, pos, len(body))
        said = str(props.get(REASON_STRING, [""])[0])
    codes = list(body[pos:])
    if not codes:
        raise ProtocolError("a SUBACK without return codes (MQTT-3.9.3-1)")
    return packet_id, codes, said


def read_disconnect(body: bytes) -> str:
    """5.0 3.14: why the broker ends the connection (3.1.1 brokers never send DISCONNECT)."""
    if not body:
        return reason(0)
    props = read_properties(body, 1, len(body))[0] if len(body) > 1 else {}
    return reason(body[0], props)
