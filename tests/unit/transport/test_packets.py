"""MQTT packets against the OASIS specifications (MQTT 3.1.1, 2014; MQTT 5.0, 2019): the
bytes this client sends, and what it makes of the bytes a broker sends, malformed ones
included. Section numbers are 3.1.1's unless marked 5.0."""

from __future__ import annotations

import pytest

from transport import packets
from transport.packets import (
    Connect,
    ProtocolError,
    puback,
    publish,
    read_ack,
    read_connack,
    read_disconnect,
    read_properties,
    read_suback,
    read_utf8,
    read_varint,
    subscribe,
    utf8,
    varint,
)

# -- representations (sections 1.5 and 2.2.3) -------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [  # Table 2.4, Size of Remaining Length field: each size's smallest and largest
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16_383, "ff7f"),
        (16_384, "808001"),
        (2_097_151, "ffff7f"),
        (2_097_152, "80808001"),
        (268_435_455, "ffffff7f"),
    ],
)
def test_remaining_lengths_of_table_2_4(value: int, encoded: str) -> None:
    raw = bytes.fromhex(encoded)
    assert varint(value) == raw
    assert read_varint(raw, 0, len(raw)) == (value, len(raw))


def test_a_remaining_length_has_at_most_four_bytes() -> None:
    with pytest.raises(ValueError, match="cannot be a remaining length"):
        varint(268_435_456)
    with pytest.raises(ProtocolError, match="longer than four bytes"):
        read_varint(bytes.fromhex("ffffffff7f"), 0, 5)
    with pytest.raises(ProtocolError, match="past the end"):
        read_varint(bytes.fromhex("ff"), 0, 1)


def test_the_utf8_string_example_of_section_1_5_3() -> None:
    # Figure 1.1: "A\U0002A6D4" is 00 05 41 F0 AA 9B 94.
    assert utf8("A\U0002a6d4") == bytes.fromhex("000541f0aa9b94")
    assert read_utf8(bytes.fromhex("000541f0aa9b94"), 0, 7) == ("A\U0002a6d4", 7)


def test_strings_that_mqtt_does_not_allow() -> None:
    with pytest.raises(ValueError, match="U\\+0000"):
        utf8("a\x00b")  # MQTT-1.5.3-2
    with pytest.raises(ValueError, match="65,535"):
        utf8("x" * 65_536)
    with pytest.raises(ProtocolError, match="not valid UTF-8"):
        read_utf8(b"\x00\x02\xc3\x28", 0, 4)  # MQTT-1.5.3-1
    with pytest.raises(ProtocolError, match="past the end"):
        read_utf8(b"\x00\x09abc", 0, 5)


# -- what the client sends -------------------------------------------------------------------


def test_connect_3_1_1_keeps_the_session() -> None:
    """Section 3.1: "MQTT", level 4, flags with Clean Session 0 (3.1.2.4), keep alive 30,
    then the client identifier."""
    packet = Connect("hub", 30).encode()
    assert packet == bytes.fromhex("100f00044d5154540400001e0003") + b"hub"


def test_connect_3_1_1_with_user_name_and_password() -> None:
    packet = Connect("a", 60, username="u", password="p").encode()
    # Flags 0xC0: User Name and Password (3.1.2.8, 3.1.2.9); then both after the id (3.1.3).
    assert packet[9] == 0xC0
    assert packet.endswith(b"\x00\x01a\x00\x01u\x00\x01p")
    # 3.1.1 has no password without a user name (MQTT-3.1.2-22): an empty one is sent.
    assert Connect("a", 60, password="p").encode()[9] == 0xC0


def test_connect_5_asks_for_a_session_expiry_and_a_packet_size_limit() -> None:
    """5.0 3.1.2: level 5, Clean Start 0, then properties: Session Expiry Interval (0x11,
    5.0 3.1.2.11.2) and Maximum Packet Size (0x27, 5.0 3.1.2.11.4)."""
    packet = Connect("hub", 30, mqtt5=True, session_expiry_s=3600, max_packet_bytes=1024).encode()
    header = bytes.fromhex("00044d5154540500001e0a1100000e102700000400")
    assert packet == b"\x10" + varint(len(header) + 5) + header + b"\x00\x03hub"


def test_subscribe_has_flags_0010_and_one_filter() -> None:
    """Section 3.8: 0x82 (MQTT-3.8.1-1), packet identifier, filter, requested QoS; 5.0 adds
    an empty property list (5.0 3.8.2.1)."""
    assert subscribe(10, "a/+", 1, mqtt5=False) == bytes.fromhex("8208000a0003612f2b01")
    assert subscribe(10, "a/+", 1, mqtt5=True) == bytes.fromhex("8209000a000003612f2b01")
    with pytest.raises(ValueError, match="QoS 0 or 1"):
        subscribe(1, "a", 2, mqtt5=False)


def test_publish_qos_1_and_0() -> None:
    """Section 3.3: 0x32 is PUBLISH at QoS 1 (3.3.1.2); topic, packet identifier, payload.
    At QoS 0 there is no packet identifier (3.3.2.2). 5.0: an empty property list."""
    topic = utf8("a/b")
    assert publish(topic, b"hi", 1, 7, mqtt5=False) == bytes.fromhex("32090003612f620007") + b"hi"
    assert publish(topic, b"hi", 0, 0, mqtt5=False) == bytes.fromhex("30070003612f62") + b"hi"
    assert publish(topic, b"hi", 1, 7, mqtt5=True) == bytes.fromhex("320a0003612f62000700") + b"hi"
    assert publish(topic, b"", 0, 0, mqtt5=False, retain=True)[0] == 0x31


def test_puback_and_the_fixed_packets() -> None:
    assert puback(0x1234) == bytes.fromhex("40021234")  # section 3.4
    assert packets.PINGREQ_PACKET == bytes.fromhex("c000")  # section 3.12
    assert packets.DISCONNECT_PACKET == bytes.fromhex("e000")  # section 3.14


# -- what a broker sends ---------------------------------------------------------------------


def test_connack_3_1_1() -> None:
    """Section 3.2.2: Session Present in bit 0 of the acknowledge flags, then the code."""
    accepted = read_connack(b"\x01\x00", mqtt5=False)
    assert accepted.session_present and accepted.code == 0
    refused = read_connack(b"\x00\x05", mqtt5=False)
    assert refused.code == 5 and refused.refusal == "not authorized"
    with pytest.raises(ProtocolError, match="reserved flags"):
        read_connack(b"\x02\x00", mqtt5=False)  # MQTT-3.2.2-1
    with pytest.raises(ProtocolError, match="return code 6"):
        read_connack(b"\x00\x06", mqtt5=False)
    with pytest.raises(ProtocolError, match="3 bytes"):
        read_connack(b"\x00\x00\x00", mqtt5=False)


def test_connack_5_with_its_limits() -> None:
    """5.0 3.2.2.3: Receive Maximum (0x21), Server Keep Alive (0x13), Maximum Packet Size."""
    props = bytes.fromhex("0b21006413003c2700100000")
    connack = read_connack(b"\x00\x00" + props, mqtt5=True)
    assert (connack.receive_maximum, connack.server_keepalive) == (100, 60)
    assert connack.max_packet_bytes == 0x100000
    refused = read_connack(b"\x00\x87" + bytes.fromhex("051f0002") + b"no", mqtt5=True)
    assert refused.code == 0x87 and refused.refusal == "not authorized (no)"
    with pytest.raises(ProtocolError, match="Receive Maximum of 0"):
        read_connack(b"\x00\x00" + bytes.fromhex("03210000"), mqtt5=True)


def test_puback_5_may_leave_out_its_reason_code() -> None:
    """5.0 3.4.2.1: a Remaining Length of 2 means Success; a code may have properties."""
    assert read_ack(b"\x00\x07", mqtt5=True) == (7, 0)
    assert read_ack(b"\x00\x07\x97", mqtt5=True) == (7, 0x97)
    assert read_ack(b"\x00\x07\x97\x00", mqtt5=True) == (7, 0x97)
    with pytest.raises(ProtocolError, match="3 bytes"):
        read_ack(b"\x00\x07\x00", mqtt5=False)


def test_suback_codes() -> None:
    """Section 3.9.3: 0x00-0x02 the QoS granted, 0x80 failure; 5.0 adds properties."""
    assert read_suback(b"\x00\x01\x01", mqtt5=False) == (1, [1], "")
    assert read_suback(b"\x00\x01\x80", mqtt5=False) == (1, [0x80], "")
    with_reason = b"\x00\x01" + bytes.fromhex("061f0003") + b"acl" + b"\x87"
    assert read_suback(with_reason, mqtt5=True) == (1, [0x87], "acl")
    with pytest.raises(ProtocolError, match="without return codes"):
        read_suback(b"\x00\x01\x00", mqtt5=True)  # MQTT-3.9.3-1


def test_properties_the_specification_does_not_define_are_malformed() -> None:
    with pytest.raises(ProtocolError, match="unknown property identifier 0x7f"):
        read_properties(b"\x02\x7f\x00", 0, 3)
    with pytest.raises(ProtocolError, match="past the end"):
        read_properties(b"\x09\x11\x00", 0, 3)  # the list claims 9 bytes
    with pytest.raises(ProtocolError, match="past the end of its list"):
        read_properties(b"\x02\x11\x00", 0, 3)  # a four-byte value in two
    user = bytes.fromhex("0b260001") + b"k" + bytes.fromhex("0001") + b"v" + b"\x0b\x05"
    user = bytes((len(user) - 1,)) + user[1:]
    found, _ = read_properties(user, 0, len(user))
    assert found == {0x26: [("k", "v")], 0x0B: [5]}


def test_a_broker_disconnect_says_why() -> None:
    """5.0 3.14.2.1: no reason code is 0x00, Normal disconnection."""
    assert read_disconnect(b"") == "normal disconnection"
    assert read_disconnect(b"\x8b") == "server shutting down"
    assert read_disconnect(b"\x8e\x00") == "session taken over"
