"""Item sizes and capacity units against AWS's documented rules and worked examples (docs/aws-behaviour.md §7.1, §7.2)."""

from __future__ import annotations

import base64

import pytest

from loadcheck.core import capacity as cap

KB = 1024


def s(text: str) -> dict[str, str]:
    return {"S": text}


class TestItemSize:
    def test_string_counts_name_and_utf8_bytes(self) -> None:
        # "date" (4) + "2026-11-21" (10)
        assert cap.item_size({"date": s("2026-11-21")}) == 14
        # multi-byte: "é" is 2 bytes in UTF-8, "€" is 3
        assert cap.item_size({"n": s("é€")}) == 1 + 5

    def test_event_log_keys_count_toward_every_item(self) -> None:
        # §7.1 note: attribute names `date` and `time` count 4 bytes each
        item = {"date": s("2026-11-21"), "time": s("12:00:00.000000")}
        assert cap.item_size(item) == 4 + 10 + 4 + 15

    @pytest.mark.parametrize(
        ("number", "size"),
        [
            ("7", 2),  # 1 significant digit -> 1 byte + 1
            ("12", 2),
            ("123", 3),
            ("1234", 3),
            ("1000", 2),  # trailing zeros trimmed
            ("0.001", 2),  # leading zeros trimmed
            ("-12.50", 3),  # digits 1,2,5 -> 2 bytes + 1; sign ignored
            ("0", 1),
            ("12345678901234567890123456789012345678", 20),  # 38 digits -> 19 + 1
        ],
    )
    def test_number_one_byte_per_two_significant_digits_plus_one(self, number: str, size: int) -> None:
        assert cap.number_size(number) == size
        assert cap.item_size({"n": {"N": number}}) == 1 + size

    def test_binary_counts_raw_bytes_not_base64(self) -> None:
        raw = bytes(range(100))
        encoded = base64.b64encode(raw).decode()
        assert len(encoded) > 100
        assert cap.item_size({"b": {"B": encoded}}) == 1 + 100

    def test_bool_and_null_are_one_byte(self) -> None:
        assert cap.item_size({"ok": {"BOOL": True}, "no": {"NULL": True}}) == 2 + 1 + 2 + 1

    def test_list_and_map_overhead(self) -> None:
        # empty list/map: name + 3
        assert cap.item_size({"l": {"L": []}}) == 1 + 3
        assert cap.item_size({"m": {"M": {}}}) == 1 + 3
        # list of two strings "ab","c": 3 + (1 + 2) + (1 + 1)
        assert cap.item_size({"l": {"L": [s("ab"), s("c")]}}) == 1 + 3 + 3 + 2
        # map {"k": "vv"}: 3 + 1 + len("k") + len("vv")
        assert cap.item_size({"m": {"M": {"k": s("vv")}}}) == 1 + 3 + 1 + 1 + 2

    def test_nested_containers_add_up(self) -> None:
        inner = {"M": {"a": {"L": [{"N": "1"}]}}}  # 3 + 1 + 1 + (3 + 1 + 2) = 11
        assert cap.value_size(inner) == 11
        assert cap.item_size({"x": {"L": [inner]}}) == 1 + 3 + 1 + 11

    def test_sets_sum_their_elements(self) -> None:
        assert cap.item_size({"ss": {"SS": ["a", "bcd"]}}) == 2 + 4
        assert cap.item_size({"ns": {"NS": ["1", "123"]}}) == 2 + 2 + 3

    def test_missing_item_has_no_size(self) -> None:
        assert cap.item_size(None) == 0

    def test_unknown_type_names_the_type(self) -> None:
        with pytest.raises(ValueError, match="'X'"):
            cap.item_size({"a": {"X": "1"}})


class TestUnits:
    def test_writes_round_up_to_1kb(self) -> None:
        assert cap.write_units(1) == 1
        assert cap.write_units(KB) == 1
        assert cap.write_units(KB + 1) == 2
        assert cap.write_units(int(1.5 * KB)) == 2  # a 1.5 KB item costs 2 WCU

    def test_reads_round_up_to_4kb_and_eventual_is_half(self) -> None:
        assert cap.read_units(int(3.5 * KB), consistent=True) == 1
        assert cap.read_units(int(3.5 * KB), consistent=False) == 0.5
        assert cap.read_units(4 * KB + 1, consistent=True) == 2
        assert cap.read_units(30 * KB, consistent=True) == 8  # docs/emulator-notes.md §3: AWS charges 8, moto 0.5

    def test_missing_item_still_costs_the_minimum(self) -> None:
        assert cap.read_units(0, consistent=True) == 1
        assert cap.read_units(0, consistent=False) == 0.5

    def test_query_of_10_items_totalling_40_8_kb(self) -> None:
        # AWS: 10 items, 40.8 KB in total -> rounded once to 44 KB -> 11 RCU strong, 5.5 eventual
        sizes = [int(40.8 * KB / 10)] * 9 + [int(40.8 * KB) - 9 * int(40.8 * KB / 10)]
        assert sum(sizes) == int(40.8 * KB)
        assert cap.page_read_units(sizes, consistent=True) == 11
        assert cap.page_read_units(sizes, consistent=False) == 5.5

    def test_query_of_1500_items_of_64_bytes(self) -> None:
        # AWS: 1500 x 64 B = 96,000 B -> 24 RCU strong (not 1500 RCU: summed, then rounded once)
        assert cap.page_read_units([64] * 1500, consistent=True) == 24
        assert cap.page_read_units([64] * 1500, consistent=False) == 12

    def test_empty_page_costs_the_minimum(self) -> None:
        assert cap.page_read_units([], consistent=True) == 1
        assert cap.page_read_units([], consistent=False) == 0.5

    def test_a_page_rounds_once_where_items_alone_round_each(self) -> None:
        # Ten 1 KB items: a Query page is 3 RCU; BatchGetItem (the governor charges read_units per
        # item, tests/unit/test_governor.py) rounds each to 4 KB -> 10 RCU
        assert cap.page_read_units([KB] * 10, consistent=True) == 3
        assert sum(cap.read_units(KB, consistent=True) for _ in range(10)) == 10

    def test_put_is_charged_on_the_larger_of_old_and_new(self) -> None:
        assert cap.put_units(new_size=200, old_size=3000) == 3
        assert cap.put_units(new_size=3000, old_size=0) == 3
        assert cap.put_units(new_size=10, old_size=0) == 1
