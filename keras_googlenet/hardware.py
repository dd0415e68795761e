"""What the CPU can do: its ISA flags and model name, from /proc/cpuinfo.

The one place that reads them: training's `--precision auto` asks
`has_bf16_hardware()` and the benchmarks report the same flags. Only the
standard library is imported here (no TensorFlow, no Keras), so a process
that must never load TensorFlow (the benchmarks' torch worker) can use it.
On systems without /proc/cpuinfo the flags are an empty set.
"""
import platform

CPUINFO = "/proc/cpuinfo"

# Native bfloat16 arithmetic: AVX512_BF16 (Cooper Lake, Zen 4) or AMX (Sapphire Rapids).
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def _cpuinfo_field(name):
    """The value of the first `name : value` line of /proc/cpuinfo, or None."""
    try:
        with open(CPUINFO, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags():
    """The CPU's ISA flags (e.g. `{"avx2", "fma", "avx512_bf16"}`); an empty
    set where /proc/cpuinfo is missing."""
    return set((_cpuinfo_field("flags") or "").split())


def cpu_model():
    """The CPU's model name (`platform.processor()` without /proc/cpuinfo)."""
    return _cpuinfo_field("model name") or platform.processor()


def has_bf16_hardware(flags=None):
    """Whether the CPU computes bfloat16 natively (AVX512_BF16 or AMX), so
    mixed_bfloat16 is faster than float32 rather than emulated and slower.

    Args:
        flags: the ISA flags to judge; default `cpu_flags()`.
    """
    return bool(BF16_FLAGS & (cpu_flags() if flags is None else set(flags)))
