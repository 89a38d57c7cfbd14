"""The compact snapshot codec (polybot/snapshots/codec.py): exact round trips, the fast paths
equal to the plain definitions, and the view's SQL decoding equal to the Python decoder."""

from __future__ import annotations

import math
import random
import struct

import pytest

from polybot.exchange.models import BookLevel
from polybot.snapshots import codec, store

# values that break naive decimal logic: float noise from sums, 1e-7 steps, signs, huge and
# tiny magnitudes, the fast path's limit and the 2^53 edge
ADVERSARIAL = [
    0.0,
    -0.0,
    0.1 + 0.2,
    0.3,
    1 - 0.9,
    0.52,
    0.525,
    0.0001,
    0.00015,
    1e-6,
    1e-7,
    3e-7,
    0.1 + 1e-7,
    -0.52,
    -1e-6,
    123.456789,
    1234567.891,
    2.0**50 / 1e6,
    2.0**50 / 1e6 + 0.5,
    1e9,
    1e9 + 0.25,
    123456789012.5,
    2.0**52,
    2.0**53,
    2.0**53 + 2,
    1e15,
    1e300,
    -1e300,
    5e-324,
    sum([0.1] * 10),
    sum([0.01] * 7),
    1500.0 + 220.5 + 80.0,
    1 / 3,
    math.pi,
]


def _reference_decimals(values):
    """The plain definition: the fewest decimals (0..6) at which every value is whole."""
    for d in range(7):
        if all(codec.encode_scaled(v, 10**d).__class__ is int for v in values):
            return d
    return None


def _same(a: float, b: float) -> bool:
    """Equal as floats, and the same bits unless zero (-0.0 is stored as 0)."""
    if a != a:
        return b != b
    return a == b and (a == 0 or struct.pack("<d", a) == struct.pack("<d", b))


def _random_values(rng: random.Random, n: int) -> list[float]:
    out = []
    for _ in range(n):
        kind = rng.randrange(6)
        if kind == 0:
            out.append(round(rng.uniform(0, 1), rng.randrange(0, 7)))
        elif kind == 1:
            out.append(rng.uniform(-1e6, 1e6))
        elif kind == 2:
            out.append(rng.randrange(-(10**9), 10**9) / 10 ** rng.randrange(0, 8))
        elif kind == 3:
            out.append(sum(rng.randrange(1, 1000) / 100 for _ in range(3)))  # a depth sum
        elif kind == 4:
            out.append(rng.choice(ADVERSARIAL))
        else:
            out.append(rng.randrange(1, 10_000) * 1e-7)
    return out


# ----------------------------------------------------------------------------- scalars
@pytest.mark.parametrize("scale", [codec.PRICE_SCALE, codec.SIZE_SCALE, codec.MONEY_SCALE])
def test_scaled_values_decode_to_the_same_float(scale):
    rng = random.Random(scale)
    for v in ADVERSARIAL + _random_values(rng, 5000):
        stored = codec.encode_scaled(v, scale)
        assert _same(codec.decode_scaled(stored, scale), v), (v, stored)
        if isinstance(stored, int):
            assert abs(stored) < 2**53


def test_prices_on_the_grid_are_integers_and_off_grid_values_stay_real():
    assert codec.encode_scaled(0.52, codec.PRICE_SCALE) == 5200
    assert codec.encode_scaled(0.0001, codec.PRICE_SCALE) == 1
    assert codec.encode_scaled(1, codec.PRICE_SCALE) == 10_000
    noisy = 0.1 + 0.2  # 0.30000000000000004: not 3000 units
    assert codec.encode_scaled(noisy, codec.PRICE_SCALE) == noisy
    assert isinstance(codec.encode_scaled(0.00015, codec.PRICE_SCALE), float)
    assert codec.encode_scaled(None, codec.PRICE_SCALE) is None


def test_nan_is_stored_as_null_like_sqlite_and_infinity_as_itself():
    # SQLite binds a NaN as NULL; the codec says so instead of raising mid-cycle
    assert codec.encode_scaled(float("nan"), codec.PRICE_SCALE) is None
    assert codec.encode_scaled(float("inf"), codec.PRICE_SCALE) == float("inf")
    assert codec.encode_scaled(float("-inf"), codec.MONEY_SCALE) == float("-inf")
    cols, rows = codec.encode_rows(
        [
            (
                0,
                "t",
                "m",
                float("nan"),
                0.5,
                None,
                None,
                float("inf"),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            )
        ],
        [1],
    )
    stored = dict(zip(cols, rows[0], strict=True))
    assert stored["bid"] is None and stored["ask"] == 5000 and stored["last"] == float("inf")


# ----------------------------------------------------------------------------- levels
def test_fast_decimals_equal_the_plain_definition():
    rng = random.Random(1)
    for v in ADVERSARIAL + _random_values(rng, 20_000):
        assert codec._decimals([v]) == _reference_decimals([v]), v
    for _ in range(3000):
        vals = _random_values(rng, rng.randrange(1, 6))
        assert codec._decimals(vals) == _reference_decimals(vals), vals


def _levels(rng: random.Random) -> list[tuple[float, float]]:
    n = rng.randrange(1, 6)
    kind = rng.randrange(5)
    if kind == 0:  # a 0.01-tick book, cent sizes: the common case
        top = rng.randrange(2, 99)
        return [((top - k) / 100, round(rng.uniform(1, 5000), rng.choice([0, 2]))) for k in range(n)]
    if kind == 1:  # a 0.001 tick, whole sizes
        top = rng.randrange(10, 990)
        return [((top + k) / 1000, float(rng.randrange(1, 10**6))) for k in range(n)]
    if kind == 2:  # prices jumping around, negative steps, big sizes
        return [(rng.randrange(1, 10_000) / 10_000, float(rng.randrange(1, 10**12))) for _ in range(n)]
    vals = _random_values(rng, 2 * n)
    return list(zip(vals[0::2], vals[1::2], strict=True))


def test_levels_round_trip_exactly():
    rng = random.Random(2)
    for _ in range(5000):
        levels = _levels(rng)
        blob = codec.pack_levels(levels)
        back = codec.unpack_levels(blob)
        assert len(back) == len(levels)
        for (p, s), (p2, s2) in zip(levels, back, strict=True):
            assert _same(p2, p) and _same(s2, s), (levels, back)


def test_a_collector_book_packs_small():
    bids = [(0.52, 1500.0), (0.51, 220.5), (0.5, 80.0)]
    blob = codec.pack_levels(bids)
    assert len(blob) <= 12 < len("0.52:1500,0.51:220.5,0.5:80")
    assert blob[0] == 2 * 8 + 1  # 2 price decimals, 1 size decimal
    assert codec.unpack_levels(blob) == bids
    assert codec.text_of(blob) == "0.52:1500,0.51:220.5,0.5:80"
    assert codec.top_size(blob) == 1500.0


def test_empty_and_unrecorded_sides_differ():
    assert codec.pack_levels(None) is None
    assert codec.pack_levels([]) == b""
    assert codec.unpack_levels(None) is None
    assert codec.unpack_levels(b"") == []
    assert codec.levels_of(None) == [] and codec.levels_of(b"") == [] and codec.levels_of("") == []
    assert codec.pack_levels_many([None, "", [], b"", ()]) == [None, b"", b"", b"", b""]
    assert codec.top_size(b"") is None and codec.top_size(None) is None


def test_values_no_decimal_power_makes_whole_use_the_float_mode():
    levels = [(0.1 + 0.2, 1 / 3), (0.29, 1e-7)]
    blob = codec.pack_levels(levels)
    assert blob[0] == 0xFF and len(blob) == 1 + 8 * 4
    assert codec.unpack_levels(blob) == levels
    nan_levels = [(0.5, float("nan"))]
    back = codec.unpack_levels(codec.pack_levels(nan_levels))
    assert back[0][0] == 0.5 and math.isnan(back[0][1])


@pytest.mark.parametrize(
    "number",
    [0, 1, -1, 63, -64, 64, -65, 2**13 - 1, 2**13, 2**20 - 1, 2**20, 2**27, 2**34, 2**48, 2**52 - 1],
)
def test_varint_boundaries_round_trip(number):
    # a size of ``number`` units, and a price step of ``number`` (zigzag: n ≥ 0 → 2n, n < 0 → -2n-1)
    size_levels = [(0.5, float(abs(number)))]
    assert codec.unpack_levels(codec.pack_levels(size_levels)) == size_levels
    first = 2**40
    price_levels = [(float(first), 1.0), (float(first + number), 1.0)]
    assert codec.unpack_levels(codec.pack_levels(price_levels)) == price_levels
    z = (number << 1) ^ (number >> 63)
    out = bytearray()
    codec._varint(out, number)
    assert len(out) == max(1, -(-z.bit_length() // 7))


def test_batch_packing_gives_the_same_bytes_as_one_by_one():
    rng = random.Random(3)
    books = [_levels(rng) for _ in range(3000)]
    expected = [codec.pack_levels(b) for b in books]
    assert codec.pack_levels_many(books) == expected  # tuples
    as_book_levels = [tuple(BookLevel(p, s) for p, s in b) for b in books]
    assert codec.pack_levels_many(as_book_levels) == expected
    texts = [codec.text_of(blob) for blob in expected]
    assert codec.pack_levels_many(texts) == [codec.pack_levels(codec.levels_of(t)) for t in texts]
    mixed = [None, "", texts[0], books[1], expected[2], as_book_levels[3], [], b""]
    assert codec.pack_levels_many(mixed) == [
        None,
        b"",
        *[codec._levels_blob(x) for x in mixed[2:6]],
        b"",
        b"",
    ]


def test_malformed_level_text_is_refused():
    for bad in ("0.5", "0.5:1:2", "0.5:abc", "0.5:1,,0.4:2", "0.5:1,0.4"):
        with pytest.raises(ValueError):
            codec.pack_levels_many(["0.5:10", bad])


# ----------------------------------------------------------------------------- rows
def _rows(rng: random.Random, n: int) -> list[tuple]:
    rows = []
    for i in range(n):
        bid = rng.choice(
            [None, round(rng.uniform(0.01, 0.5), 2), round(rng.uniform(0.01, 0.5), 3), 0.1 + 0.2]
        )
        ask = rng.choice([None, round(rng.uniform(0.5, 0.99), 2), 0.51 + 1e-9])
        both = bid is not None and ask is not None
        kind = rng.randrange(6)
        if kind == 0 or not both:  # backfill: the price as mid and last, no book
            mid = rng.choice([None, round(rng.uniform(0, 1), 4), rng.uniform(0, 1)])
            spread = None
        elif kind == 1:  # the collector's formulas: nothing stored
            mid, spread = (bid + ask) / 2, ask - bid
        elif kind == 2:  # NULL although both sides are present
            mid, spread = None, None
        else:  # an exception: rounded values
            mid, spread = round((bid + ask) / 2, 6), round(ask - bid, 6)
        books = _levels(rng)
        rows.append(
            (
                1_793_491_200 + 300 * (i % 7),
                f"{10**70 + i}",
                f"m{i // 2}",
                bid,
                ask,
                mid,
                spread,
                rng.choice([None, 0.5, rng.uniform(0, 1)]),
                rng.choice([None, sum(s for _, s in books), 0.0]),
                rng.choice([None, 12.5, 1e-7]),
                rng.choice([None, "", codec.text_of(codec.pack_levels(books)), books]),
                rng.choice([None, [], books]),
                rng.choice([None, 1000.0, rng.uniform(0, 1e7)]),
                rng.choice([None, 123456.789012, 1e-7]),
                rng.choice(["collected", "backfill", None]),
            )
        )
    return rows


def _decoded_equal(a: tuple, b: tuple) -> bool:
    ca, cb = codec.canonical(a), codec.canonical(b)
    return all(
        (x is None and y is None) or (isinstance(x, float) and isinstance(y, float) and _same(x, y)) or x == y
        for x, y in zip(ca, cb, strict=True)
    )


def _expected(row: tuple) -> tuple:
    """What a row decodes to: sources default to 'collected', levels as numbers."""
    r = list(row)
    r[14] = row[14] or "collected"
    return tuple(r)


def test_rows_round_trip_through_encode_and_decode():
    rng = random.Random(4)
    for i, row in enumerate(_rows(rng, 3000)):
        stored = codec.encode(row, i + 1)
        back = codec.decode(stored, row[1], row[2])
        assert _decoded_equal(back, _expected(row)), (row, stored, back)


def test_mid_and_spread_are_stored_only_where_they_differ_from_the_formulas():
    def stored(mid, spread, bid=0.52, ask=0.54):
        enc = codec.encode((0, "t", "m", bid, ask, mid, spread) + (None,) * 7 + ("collected",), 1)
        return enc[11], enc[12]

    assert stored((0.52 + 0.54) / 2, 0.54 - 0.52) == (None, None)
    assert stored(None, None) == (codec.NULL_MARK, codec.NULL_MARK)  # NULL on purpose
    assert stored(0.531, 0.021) == (5310, 210)  # values that differ from the formulas
    assert stored(0.7, None, bid=None, ask=None) == (7000, None)  # a backfilled row's price
    for enc_mid in (None, codec.NULL_MARK, 5300):
        assert codec._decode_exception(enc_mid, 0.53) == {None: 0.53, b"": None, 5300: 0.53}[enc_mid]


def test_batch_encoding_equals_row_by_row():
    rng = random.Random(5)
    rows = _rows(rng, 4000)
    keys = list(range(1, len(rows) + 1))
    cols, batch = codec.encode_rows(rows, keys)
    full = ("timestamp", "token_key", *codec.STORED)
    for row, key, got in zip(rows, keys, batch, strict=True):
        one = dict(zip(full, codec.encode(row, key), strict=True))
        assert tuple(one[c] for c in cols) == got
        assert all(one[c] in (None, 0) for c in full if c not in cols)


def test_batch_encoding_leaves_out_columns_that_are_null_in_every_row():
    row = (
        0,
        "t",
        "m",
        0.52,
        0.54,
        (0.52 + 0.54) / 2,
        0.54 - 0.52,
        0.53,
        3.0,
        4.0,
        "0.52:3",
        "0.54:4",
        1.0,
        2.0,
    )
    cols, _ = codec.encode_rows([(*row, "collected")], [1])
    assert "mid" not in cols and "spread" not in cols and "source" not in cols
    cols, rows = codec.encode_rows(
        [(*row, "collected"), (*row[:5], None, None, *row[7:], "backfill")], [1, 2]
    )
    assert {"mid", "spread", "source"} <= set(cols)
    assert rows[1][cols.index("mid")] == codec.NULL_MARK and rows[1][cols.index("source")] == 1
    with pytest.raises(ValueError, match="unknown snapshot source"):
        codec.encode_rows([(*row, "guessed")], [1])


# ----------------------------------------------------------------------------- the database
def test_the_views_sql_decoding_equals_the_python_decoder(snapshot_db):
    conn = snapshot_db
    rng = random.Random(6)
    rows = {(r[0], r[1]): r for r in _rows(rng, 2000)}  # one row per primary key
    from polybot import db

    with db.atomic(conn):
        store.insert_rows(conn, list(rows.values()))
    view = {(r[0], r[1]): tuple(r) for r in conn.execute("SELECT * FROM snapshot_values")}
    assert len(view) == len(rows)
    stored = conn.execute(
        "SELECT s.*, k.token_id, k.market_id FROM market_snapshots s JOIN snapshot_tokens k USING (token_key)"
    ).fetchall()
    for r in stored:
        values = tuple(r)
        by_python = codec.decode(values[:14], values[14], values[15])
        by_sql = view[(values[0], values[14])]
        assert all(
            (x is None and y is None) or (type(x) is type(y) and (x == y or (x != x and y != y)))
            for x, y in zip(by_python, by_sql, strict=True)
        ), (by_python, by_sql)
        assert _decoded_equal(by_sql, _expected(rows[(values[0], values[14])]))


def test_inserting_through_the_view_equals_the_fast_path(snapshot_db):
    conn = snapshot_db
    rng = random.Random(7)
    rows = list({(r[0], r[1]): r for r in _rows(rng, 300)}.values())
    text_rows = [
        tuple(codec.text_of(codec._levels_blob(v)) if i in (10, 11) else v for i, v in enumerate(r))
        for r in rows
    ]
    conn.executemany(f"INSERT INTO snapshot_values VALUES ({', '.join('?' * 15)})", text_rows)
    via_trigger = conn.execute("SELECT * FROM market_snapshots ORDER BY timestamp, token_key").fetchall()
    conn.execute("DELETE FROM market_snapshots")
    store.insert_rows(conn, rows)
    fast = conn.execute("SELECT * FROM market_snapshots ORDER BY timestamp, token_key").fetchall()

    def levels_as_numbers(r):  # the text of a -0.0 level says "0": equal, not the same bytes
        return tuple(codec.unpack_levels(v) if i in (7, 8) else v for i, v in enumerate(r))

    assert [levels_as_numbers(r) for r in fast] == [levels_as_numbers(r) for r in via_trigger]


def test_token_keys_for_a_batch_add_new_tokens_once_and_keep_the_order(snapshot_db):
    conn = snapshot_db
    first = store.TokenKeys(conn)
    assert first.key("t1", "m1") == 1
    keys = store.TokenKeys(conn)  # another user of the table: t1 exists, not cached here
    got = keys.many(
        [("t2", "m1"), ("t1", "m1"), ("t3", "m2"), ("t2", "m1")] + [(f"x{i}", "m9") for i in range(1200)]
    )
    assert got[:4] == [2, 1, 3, 2]
    assert got[4:] == list(range(4, 1204))
    rows = conn.execute(
        "SELECT token_key, token_id, market_id FROM snapshot_tokens ORDER BY token_key"
    ).fetchall()
    assert [tuple(r) for r in rows[:3]] == [(1, "t1", "m1"), (2, "t2", "m1"), (3, "t3", "m2")]
    assert len(rows) == 1203


def test_top_size_decodes_only_the_first_level_and_agrees_with_levels_of():
    # snapshot_top_size (SQL) reads the first two numbers of a BLOB; the answer is the first
    # level's size as the full decoder gives it, whatever the encoding
    import random

    rng = random.Random(9)
    sides = [
        [(0.52, 1500.0), (0.51, 220.5)],
        [(0.999, 123456789.12)],  # long varints
        [(0.5, -0.0)],
        [(0.1 + 0.2, 1 / 3), (0.29, 1e-7)],  # the float mode
        [(0.0001, 0.01)] * 3,
    ]
    for _ in range(300):
        n = rng.randint(1, 5)
        sides.append(
            [
                (
                    rng.randint(1, 9999) / 10 ** rng.randint(2, 4),
                    rng.randint(0, 10**9) / 10 ** rng.randint(0, 6),
                )
                for _ in range(n)
            ]
        )
    for side in sides:
        blob = codec.pack_levels(side)
        want = codec.levels_of(blob)[0][1]
        got = codec.top_size(blob)
        assert got == want and repr(got) == repr(want), side
        assert codec.top_size(bytearray(blob)) == want
        assert codec.top_size(codec.text_of(blob)) == codec.levels_of(codec.text_of(blob))[0][1]
    blob = codec.pack_levels([(0.52, 1500.0)])
    assert codec.top_size(blob[:2]) is None  # a price without its size: no complete level
    assert codec.levels_of(blob[:2]) == []
