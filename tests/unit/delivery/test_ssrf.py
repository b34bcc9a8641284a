"""The SSRF guard's address decisions, as pure functions: no sockets anywhere in this file."""

import pickle
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from hookd.config import SettingsError, load_settings
from hookd.delivery.ssrf import TargetGuard, TargetRefused, check_literal_host

GUARD = TargetGuard(allow=[])


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.1.2", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("fec0::1", "site-local"),
        ("192.0.2.1", "not a public"),
        ("198.18.0.1", "not a public"),
        ("0.1.2.3", "not a public"),
        ("2001:db8::1", "not a public"),
    ],
)
def test_blocked_categories(address: str, category: str) -> None:
    reason = GUARD.refusal(address)
    assert reason is not None
    assert reason.startswith(address)
    assert category in reason


def test_reason_reads_naturally() -> None:
    assert GUARD.refusal("127.0.0.1") == "127.0.0.1 is a loopback address"


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700::1", "2a00:1450:4001::1"]
)
def test_public_addresses_pass(address: str) -> None:
    assert GUARD.refusal(address) is None


def test_accepts_address_objects() -> None:
    assert GUARD.refusal(IPv4Address("93.184.216.34")) is None
    assert GUARD.refusal(IPv6Address("2606:4700::1")) is None
    assert "loopback" in (GUARD.refusal(IPv4Address("127.0.0.1")) or "")
    assert "link-local" in (GUARD.refusal(IPv6Address("fe80::2")) or "")


def test_non_address_string_is_refused() -> None:
    assert GUARD.refusal("not-an-ip") == "not-an-ip is not an IP address"


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:100.64.0.1", "shared"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("64:ff9b::127.0.0.1", "loopback"),
        ("64:ff9b::192.168.0.1", "private"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:a9fe:a9fe::", "link-local"),
    ],
)
def test_ipv4_embedded_in_ipv6_is_judged_as_ipv4(address: str, category: str) -> None:
    reason = GUARD.refusal(address)
    assert reason is not None
    assert category in reason


def test_mapped_reason_names_the_ipv4_address() -> None:
    expected = "::ffff:127.0.0.1 leads to 127.0.0.1, a loopback address"
    assert GUARD.refusal("::ffff:127.0.0.1") == expected
    assert GUARD.refusal("::ffff:7f00:1") == expected


@pytest.mark.parametrize("address", ["::ffff:93.184.216.34", "64:ff9b::8.8.8.8", "2002:808:808::1"])
def test_ipv4_embedded_public_addresses_pass(address: str) -> None:
    assert GUARD.refusal(address) is None


@pytest.mark.parametrize("address", ["::127.0.0.1", "100::1", "64:ff9b:1::1"])
def test_other_special_ipv6_ranges_are_refused(address: str) -> None:
    assert GUARD.refusal(address) is not None


def test_allow_list_overrides() -> None:
    guard = TargetGuard(allow=[IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")])
    assert guard.refusal("127.0.0.1") is None
    assert guard.refusal("127.8.9.10") is None
    assert guard.refusal("::1") is None
    assert guard.refusal("::ffff:127.0.0.1") is None
    assert guard.refusal("10.0.0.1") is not None
    assert guard.refusal("::2") is not None


def test_allow_list_single_host() -> None:
    guard = TargetGuard(allow=parse_allow_list("169.254.169.254"))
    assert guard.refusal("169.254.169.254") is None
    assert guard.refusal("169.254.169.253") is not None


def test_ipv4_allow_entry_does_not_allow_ipv6_by_bits() -> None:
    # 127.0.0.0/8 compared bitwise against ::7f00:1 would match if versions were not kept apart.
    guard = TargetGuard(allow=[IPv4Network("0.0.0.0/0")])
    assert guard.refusal("::1") is not None
    assert guard.refusal("fe80::1") is not None


def test_disabled_guard_permits_everything() -> None:
    guard = TargetGuard(allow=[], enabled=False)
    for address in ("127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1"):
        assert guard.refusal(address) is None
    assert check_literal_host(guard, "127.0.0.1") is None


def parse_allow_list(text: str) -> list[IPv4Network | IPv6Network]:
    """HOOKD_ALLOW_TARGETS as the guard gets it."""
    return load_settings(allow_targets=text).allow_networks


def test_parse_allow_list() -> None:
    assert parse_allow_list("") == []
    assert parse_allow_list("   ") == []
    assert parse_allow_list(" 127.0.0.0/8 , ::1/128,10.1.2.3 ,fd00::/8, ") == [
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
        IPv4Network("10.1.2.3/32"),
        IPv6Network("fd00::/8"),
    ]


def test_parse_allow_list_tolerates_host_bits() -> None:
    assert parse_allow_list("10.1.2.3/8") == [IPv4Network("10.0.0.0/8")]


@pytest.mark.parametrize("item", ["nonsense", "10.0.0.0/33", "300.1.1.1", "::1/129", "10.0.0/8"])
def test_parse_allow_list_rejects_bad_items(item: str) -> None:
    with pytest.raises(SettingsError, match=f"^HOOKD_ALLOW_TARGETS: '{item}' is not a CIDR"):
        parse_allow_list(f"127.0.0.0/8, {item}")


@pytest.mark.parametrize(
    ("host", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("[::1]", "loopback"),
        ("::1", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1]", "link-local"),
        ("10.0.0.1", "private"),
    ],
)
def test_check_literal_host_refuses_blocked_literals(host: str, category: str) -> None:
    assert category in (check_literal_host(GUARD, host) or "")


@pytest.mark.parametrize("host", ["example.com", "localhost", "hooks.example.org.", "a1.b2"])
def test_check_literal_host_leaves_names_to_the_resolver(host: str) -> None:
    assert check_literal_host(GUARD, host) is None


@pytest.mark.parametrize("host", ["93.184.216.34", "[2606:4700::1]"])
def test_check_literal_host_passes_public_literals(host: str) -> None:
    assert check_literal_host(GUARD, host) is None


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0177.0.0.1", "127.0.0.1.", "[::1::]"])
def test_check_literal_host_refuses_non_canonical_numeric_hosts(host: str) -> None:
    assert check_literal_host(GUARD, host) == f"{host} is not a canonical IP address"


def test_check_literal_host_honours_allow_list() -> None:
    guard = TargetGuard(allow=parse_allow_list("127.0.0.0/8"))
    assert check_literal_host(guard, "127.0.0.1") is None


def test_target_refused_is_an_oserror_with_its_reason() -> None:
    error = TargetRefused("127.0.0.1 is a loopback address")
    assert isinstance(error, OSError)
    assert error.reason == str(error) == error.strerror == "127.0.0.1 is a loopback address"
    assert error.errno is not None


def test_target_refused_survives_pickling() -> None:
    copy = pickle.loads(pickle.dumps(TargetRefused("why")))
    assert isinstance(copy, TargetRefused)
    assert copy.reason == "why"
