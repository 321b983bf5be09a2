"""bitspike's seeded random streams, reproduced: Xoshiro256++ seeded through SplitMix64
(`src/rng.rs`, rand_xoshiro 0.7) and the rand 0.9 algorithms bitspike draws with
(`SliceRandom::shuffle`, `random_range`, `random_bool`). With them a one-process run of
`python -m bitspike_torch.train` visits the samples in bitspike's order and augments them the
same way, so it repeats a bitspike run step for step.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1
# Mixed with the epoch (src/data/batch.rs `epoch_order`) and the step (src/train/trainer.rs
# `STEP_SEED_MIX`) to seed the shuffle and the augmentation.
EPOCH_SEED_MIX = 0x9E37_79B9_7F4A_7C15
STEP_SEED_MIX = 0xA24B_AED4_963E_E407


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK64


class Xoshiro256PlusPlus:
    """rand_xoshiro's `Xoshiro256PlusPlus::seed_from_u64` and its outputs."""

    def __init__(self, seed: int):
        x, state = seed & MASK64, []
        for _ in range(4):  # SplitMix64 fills the 32-byte seed, one u64 at a time
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            state.append(z ^ (z >> 31))
        self.s = state

    def next_u64(self) -> int:
        s = self.s
        result = (_rotl((s[0] + s[3]) & MASK64, 23) + s[0]) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def next_u32(self) -> int:
        return self.next_u64() >> 32  # the upper bits, as rand_xoshiro does

    def below(self, bound: int) -> int:
        """`random_range(0..bound)` for 32-bit integers: rand 0.9's biased Canon method."""
        hi, lo = divmod(self.next_u32() * bound, 1 << 32)
        if lo > (-bound) & 0xFFFFFFFF:
            new_hi = (self.next_u32() * bound) >> 32
            hi += (lo + new_hi) >> 32
        return hi

    def coin(self) -> bool:
        """`random_bool(0.5)`: a u64 below 2^63."""
        return self.next_u64() < (1 << 63)


def _bound_u32(m: int) -> tuple[int, int]:
    """rand's `calculate_bound_u32`: m*(m+1)*... while it fits in 32 bits, and the count."""
    product, current = m, m + 1
    while product * current <= 0xFFFFFFFF:
        product *= current
        current += 1
    return product, current - m


def shuffle(items: list, rng: Xoshiro256PlusPlus) -> None:
    """rand 0.9 `SliceRandom::shuffle` (Fisher-Yates with `IncreasingUniform`, which draws one
    number for several indices), in place."""
    if len(items) <= 1:
        return
    n, chunk, remaining = 0, 0, 1  # IncreasingUniform::new(rng, 0)
    for i in range(len(items)):
        next_n = n + 1
        if remaining == 0:
            bound, count = _bound_u32(next_n)
            chunk = rng.below(bound)
            remaining = count
        remaining -= 1
        if remaining == 0:
            index = chunk
        else:
            index, chunk = chunk % next_n, chunk // next_n
        n = next_n
        items[i], items[index] = items[index], items[i]


def epoch_order(n: int, seed: int, epoch: int, shuffle_on: bool) -> list[int]:
    """`src/data/batch.rs` `epoch_order`: file order, or bitspike's seeded permutation."""
    order = list(range(n))
    if shuffle_on:
        shuffle(order, Xoshiro256PlusPlus(seed ^ (((epoch + 1) * EPOCH_SEED_MIX) & MASK64)))
    return order


def augmentation(batch: int, seed: int, step: int) -> list[tuple[int, int, bool]]:
    """(dy, dx, flip) per sample of the batch of optimizer step `step` (0-based), as
    `make_batch` draws them: shifts in -4..=4, a fair coin."""
    rng = Xoshiro256PlusPlus(seed ^ (((step + 1) * STEP_SEED_MIX) & MASK64))
    return [(rng.below(9) - 4, rng.below(9) - 4, rng.coin()) for _ in range(batch)]
