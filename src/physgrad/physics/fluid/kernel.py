"""The fused CPU advection kernel (``advection_kernel.c``): compiled on first use, ctypes-loaded.

:mod:`physgrad.physics.fluid.advection` runs its semi-Lagrangian / MacCormack steps (forward
and first-order backward) through this kernel when the tensors are contiguous-able float32 or
float64 CPU tensors, and through its torch implementation otherwise. The kernel repeats the
torch fast path operation by operation, so both give bitwise the same results on this
machine kind (x86-64, torch's CPU kernels built with FMA contraction and a grid sampler working
on 32-byte vectors, as the official wheels; ``tests/test_fluid_advection_kernel.py`` checks it
wherever it runs).

The same library holds the staggered-grid stencils: :mod:`physgrad.physics.fluid.grid`'s
face means, centring and divergences and the projections' gradient subtraction
(:mod:`~physgrad.physics.fluid.pressure`), each the torch code's elementwise operations in its
order, so the same bits; and the gradients of those stencils and of the energy rescale as
autograd computes them (:mod:`~physgrad.physics.fluid.adjoints`).

Compiled once per source version with the system C compiler (``$CC``, else ``cc``/``gcc``)
into ``$PHYSGRAD_KERNEL_CACHE`` (default ``$XDG_CACHE_HOME/physgrad/kernels`` or
``~/.cache/physgrad/kernels``), the library named by a hash of the source and the flags;
written to a temporary file and renamed, so concurrent first uses are safe. No compiler, a
failed compile or ``PHYSGRAD_NO_KERNEL=1`` select the torch path silently; the reason is in
:func:`kernel_status` and in one debug-level log line.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("advection_kernel.c")
# No floating-point contraction or fast-math: the kernel's own fma() calls sit exactly where
# torch's grid sampler has them, everything else must round as written. -fno-trapping-math
# (ignore floating-point exception flags) changes no value; it lets the loops vectorise.
FLAGS = (
    "-O3", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math", "-std=c99", "-fPIC",
    "-shared",
)
DISABLE_VARIABLE = "PHYSGRAD_NO_KERNEL"
# grid_sample's CPU kernel works on 32-byte vectors; its backward scatters vector by vector
TORCH_VECTOR_BYTES = 32

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_load_error: str | None = None
_loaded = False


def cache_directory() -> Path:
    """Where compiled kernels are kept (per user)."""
    explicit = os.environ.get("PHYSGRAD_KERNEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "physgrad" / "kernels"


def _machine_flags() -> tuple[str, ...]:
    """Vector and fma instructions where this x86-64 CPU has them: speed only, the results
    are the same (fma() is exact either way, contraction stays off)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return ()
    try:
        cpu = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return ()
    if "avx2" not in cpu or "fma" not in cpu:
        return ()
    flags: tuple[str, ...] = ("-mavx2", "-mfma")
    if all(f"avx512{part}" in cpu for part in ("f", "vl", "bw", "dq")):
        # 16 floats per instruction: the kernel's forward ~15% faster on this project's CPUs
        flags += ("-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq",
                  "-mprefer-vector-width=512")
    return flags


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _build(compiler: str) -> Path:
    """Compile the kernel unless this source/flags version is already in the cache."""
    source = SOURCE.read_bytes()
    flags = (*FLAGS, *_machine_flags())
    key = hashlib.sha256(source + repr((compiler, flags)).encode()).hexdigest()[:16]
    directory = cache_directory()
    target = directory / f"advection-{key}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    os.close(handle)
    try:
        result = subprocess.run(
            [compiler, *flags, "-o", temporary, str(SOURCE), "-lm"],
            capture_output=True, text=True, timeout=300, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{compiler} exited with {result.returncode}: {result.stderr.strip()[-500:]}"
            )
        os.replace(temporary, target)  # atomic: a concurrent build renames an equal file
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def _declare(library: ctypes.CDLL) -> None:
    i64, ptr, flag = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    for suffix, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        forward = getattr(library, f"advect_forward_{suffix}")
        forward.argtypes = [i64, i64, i64, ptr, ptr, ptr, i64, i64, real, real, flag, ptr, ptr]
        forward.restype = flag
        backward = getattr(library, f"advect_backward_{suffix}")
        backward.argtypes = [
            i64, i64, i64, ptr, ptr, ptr, real, real, flag, ptr, ptr, real, real, i64, ptr,
            ptr, ptr,
        ]
        backward.restype = flag
        carried = getattr(library, f"carried_forward_{suffix}")
        carried.argtypes = [i64, i64, i64, ptr, ptr, flag, real, real, flag, ptr, ptr]
        carried.restype = flag
        carried = getattr(library, f"carried_backward_{suffix}")
        carried.argtypes = [
            i64, i64, i64, ptr, ptr, flag, real, real, flag, ptr, ptr, real, real, i64, ptr, ptr,
        ]
        carried.restype = flag
        stencils = {
            "face_components": [ptr, ptr, ptr],
            "staggered_to_centered": [ptr, ptr, ptr, i64],
            "divergence": [ptr, real, real, flag, ptr],
            "subtract_gradient": [ptr, ptr, real, real, flag, ptr],
            "face_components_backward": [ptr, ptr, ptr],
            "staggered_to_centered_backward": [ptr, ptr, i64, ptr],
            "divergence_backward": [ptr, real, real, ptr],
            "subtract_gradient_backward": [ptr, real, real, ptr],
            "rescale_energy_backward": [ptr, ptr, ptr, ptr, i64, ptr],
            "energy_factor_backward": [ptr, ptr, ptr, ptr, i64, ptr, ptr],
        }
        for name, arguments in stencils.items():
            stencil = getattr(library, f"{name}_{suffix}")
            stencil.argtypes = [i64, i64, i64, *arguments]
            stencil.restype = flag


def _load() -> None:
    global _library, _load_error, _loaded
    with _lock:
        if _loaded:
            return
        try:
            compiler = _compiler()
            if compiler is None:
                raise RuntimeError("no C compiler found (set CC)")
            library = ctypes.CDLL(str(_build(compiler)))
            _declare(library)
            _library = library
            _log.debug("fused advection kernel loaded from %s", library._name)
        except Exception as error:  # any failure means the torch path, never a crash
            _load_error = f"{type(error).__name__}: {error}"
            _log.debug("fused advection kernel unavailable, using torch: %s", _load_error)
        _loaded = True


def library() -> ctypes.CDLL | None:
    """The loaded kernel library, or ``None`` when disabled or unavailable."""
    if os.environ.get(DISABLE_VARIABLE) == "1":
        return None
    if not _loaded:
        _load()
    return _library


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the kernel runs for these ``(N, ny, nx)`` tensors: plain tensors, all on the
    CPU, one float32/float64 dtype, a grid whose working arrays have int32 offsets, and the
    library loaded."""
    first = tensors[0]
    dtype = first.dtype
    if dtype is not torch.float32 and dtype is not torch.float64:
        return False
    if (first.shape[-2] + 5) * (first.shape[-1] + 5) >= 2**31:
        return False
    for t in tensors:  # (a plain loop: this runs a few hundred times per training step)
        if t.dtype is not dtype or t.device.type != "cpu":
            return False
        if type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter:
            return False  # tensor subclasses (fake, meta-like wrappers) have no plain data
    return library() is not None


def kernel_status() -> str:
    """One line: whether advection runs the fused kernel, and why not if it doesn't.

    Loads (compiles on first use) the kernel if that has not happened yet.
    """
    if os.environ.get(DISABLE_VARIABLE) == "1":
        return f"torch path: disabled by {DISABLE_VARIABLE}=1"
    lib = library()
    if lib is None:
        return f"torch path: kernel unavailable ({_load_error})"
    return f"fused kernel: {lib._name} (CPU float32/float64; other devices use torch)"


def _suffix(dtype: torch.dtype) -> str:
    return "f32" if dtype == torch.float32 else "f64"


def _call(function: str, grid: torch.Tensor, *args: torch.Tensor | float | int | None) -> None:
    """Run the compiled ``function`` for the ``(N, ..., ny, nx)`` shape and dtype of ``grid``:
    ``function_<f32|f64>(N, ny, nx, *args)``, a tensor passed as its data pointer (contiguous;
    a view points into its base), ``None`` as a null pointer, a number as it is."""
    lib = _library if _library is not None else library()  # (no environment read per call)
    if lib is None:
        raise RuntimeError(f"the fused advection kernel is not available: {kernel_status()}")
    n, ny, nx = grid.shape[0], grid.shape[-2], grid.shape[-1]
    values = [a.data_ptr() if isinstance(a, torch.Tensor) else a for a in args]
    code = getattr(lib, f"{function}_{_suffix(grid.dtype)}")(n, ny, nx, *values)
    if code == 1:  # the C functions' codes: 1 no memory for the working arrays, 2 bad argument
        raise MemoryError(f"fused advection kernel: {function} could not allocate its arrays")
    if code != 0:
        raise ValueError(f"fused advection kernel: {function} refused its arguments (code {code})")


def advect(
    values: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor,
    cx: float, cy: float, mac_cormack: bool, *, keep_decisions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Advected ``values (N, ny, nx)`` (contiguous) for the velocity ``(wx, wy)`` sampled at
    the field's points; ``cx, cy`` are ``dt / dx`` and ``dt / dy`` (index units per velocity
    unit). ``wx`` and ``wy`` are ``(M, ny, nx)`` with ``N`` a multiple of ``M``, same dtype,
    each ``(ny, nx)`` plane contiguous and both with one stride between planes (e.g. the
    components ``v[:, 0]``, ``v[:, 1]`` of a ``(M, 2, ny, nx)`` velocity): plane ``q`` moves
    the ``N / M`` consecutive fields from ``q N / M`` on (the channels of one sample).

    Returns ``(result, decisions)``: with ``keep_decisions`` and MacCormack, ``decisions``
    are the limiter's per point (``(N, ny, nx)`` uint8: whether it left the point alone and
    which corner a clamped value is, what :func:`advect_backward` needs of the forward),
    else ``None``."""
    n, (m, ny, nx) = values.shape[0], wx.shape
    if (wy.shape != wx.shape or wx.stride() != wy.stride() or wx.stride()[1:] != (nx, 1)
            or m < 1 or n % m or tuple(values.shape[1:]) != (ny, nx)):
        raise ValueError(
            f"advect needs velocity planes (M, ny, nx) with contiguous rows and one stride "
            f"for a multiple of M fields: values {tuple(values.shape)}, wx {tuple(wx.shape)} "
            f"{wx.stride()}, wy {tuple(wy.shape)} {wy.stride()}"
        )
    out = torch.empty_like(values, memory_format=torch.contiguous_format)
    kept = None
    if keep_decisions and mac_cormack:
        kept = torch.empty(values.shape, dtype=torch.uint8)
    _call("advect_forward", values, values, wx, wy, wx.stride(0), n // m, cx, cy,
          int(mac_cormack), out, kept)
    return out, kept


def _check_decisions(caller: str, source: str, mac_cormack: bool,
                     decisions: torch.Tensor | None, values: torch.Tensor) -> None:
    """The C backward reads ny * nx bytes of MacCormack decisions per field: refuse missing
    or foreign ones in one line."""
    if mac_cormack and (
        decisions is None or decisions.dtype != torch.uint8
        or decisions.shape != values.shape or not decisions.is_contiguous()
    ):
        shape = None if decisions is None else (tuple(decisions.shape), decisions.dtype)
        raise ValueError(
            f"{caller} with MacCormack needs the decisions of {source}: contiguous uint8 "
            f"{tuple(values.shape)}, got {shape}"
        )


def advect_backward(
    values: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor,
    cx: float, cy: float, mac_cormack: bool, decisions: torch.Tensor | None,
    grad: torch.Tensor,
    grid_scales: tuple[float, float], needs: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients ``(values, wx, wy)`` of :func:`advect` (for MacCormack given its kept
    ``decisions``) for the output gradient ``grad (N, ny, nx)`` (contiguous);
    ``grid_scales``: ``2 dt / (n dx)`` per axis; ``needs``: which of the three to compute
    (the others are ``None``)."""
    _check_decisions("advect_backward", "advect(..., keep_decisions=True)", mac_cormack,
                     decisions, values)
    outputs = [torch.empty_like(values) if need else None for need in needs]
    chunk = TORCH_VECTOR_BYTES // values.element_size()
    _call("advect_backward", values, values, wx, wy, cx, cy, int(mac_cormack), decisions,
          grad, grid_scales[0], grid_scales[1], chunk, *outputs)
    return outputs[0], outputs[1], outputs[2]


def carried_advect(
    values: torch.Tensor, carrier: torch.Tensor, faces: bool, cx: float, cy: float,
    mac_cormack: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """An advection whose velocity a stencil makes from the staggered ``carrier (B, 2, ny,
    nx)`` (contiguous), a sample at a time: ``faces`` the carrier's self-advection with its
    face means (``values`` is the carrier), else a single-channel cell-centred ``values (B, 1,
    ny, nx)`` (contiguous) moved by its centring. ``cx, cy`` as for :func:`advect`. Returns
    ``(result, decisions)`` shaped like ``values`` (the decisions for MacCormack, else
    ``None``), what :func:`carried_advect_backward` takes."""
    out = torch.empty_like(values)
    kept = torch.empty(values.shape, dtype=torch.uint8) if mac_cormack else None
    _call("carried_forward", carrier, values, carrier, int(faces), cx, cy, int(mac_cormack),
          out, kept)
    return out, kept


def carried_advect_backward(
    values: torch.Tensor, carrier: torch.Tensor, faces: bool, cx: float, cy: float,
    mac_cormack: bool, decisions: torch.Tensor | None, grad: torch.Tensor,
    grid_scales: tuple[float, float], need_values: bool,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Gradients ``(values, carrier)`` of :func:`carried_advect` for ``grad`` (contiguous,
    shaped like ``values``); the values' is ``None`` for ``faces`` (the carrier's includes it)
    or when not ``need_values``."""
    _check_decisions("carried_advect_backward", "carried_advect", mac_cormack, decisions,
                     values)
    g_values = torch.empty_like(values) if need_values and not faces else None
    g_carrier = torch.empty_like(carrier)
    chunk = TORCH_VECTOR_BYTES // values.element_size()
    _call("carried_backward", carrier, values, carrier, int(faces), cx, cy, int(mac_cormack),
          decisions, grad, grid_scales[0], grid_scales[1], chunk, g_values, g_carrier)
    return g_values, g_carrier


def face_components(velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`physgrad.physics.fluid.grid._face_components` of a contiguous staggered
    ``velocity (B, 2, ny, nx)`` without autograd: ``(wx, wy)``, each ``(B, 2, ny, nx)``."""
    wx, wy = torch.empty_like(velocity), torch.empty_like(velocity)
    _call("face_components", velocity, velocity, wx, wy)
    return wx, wy


def centred_components(velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`physgrad.physics.fluid.grid.staggered_to_centered` of a contiguous staggered
    ``velocity (B, 2, ny, nx)`` without autograd, as its two components ``(cx, cy)``, each a
    contiguous ``(B, ny, nx)`` tensor."""
    b, _, ny, nx = velocity.shape
    cx, cy = velocity.new_empty(b, ny, nx), velocity.new_empty(b, ny, nx)
    _call("staggered_to_centered", velocity, velocity, cx, cy, ny * nx)
    return cx, cy


def staggered_to_centered(velocity: torch.Tensor) -> torch.Tensor:
    """:func:`physgrad.physics.fluid.grid.staggered_to_centered` of a contiguous staggered
    ``velocity (B, 2, ny, nx)`` without autograd: ``(B, 2, ny, nx)``."""
    out = torch.empty_like(velocity)
    ny, nx = velocity.shape[-2:]
    # x components at out[:, 0], y at out[:, 1]: one sample's pair 2 ny nx apart
    _call("staggered_to_centered", velocity, velocity, out[:, 0], out[:, 1], 2 * ny * nx)
    return out


def divergence(velocity: torch.Tensor, sx: float, sy: float, centred: bool) -> torch.Tensor:
    """:func:`physgrad.physics.fluid.grid.divergence` (``sx, sy = dx, dy``) or
    ``divergence_centered`` (``centred``, ``sx, sy = 2 dx, 2 dy``) of a contiguous
    ``velocity (B, 2, ny, nx)`` without autograd: ``(B, ny, nx)``."""
    b, _, ny, nx = velocity.shape
    out = velocity.new_empty(b, ny, nx)
    _call("divergence", velocity, velocity, sx, sy, int(centred), out)
    return out


def subtract_gradient(
    velocity: torch.Tensor, pressure: torch.Tensor, sx: float, sy: float, centred: bool
) -> torch.Tensor:
    """``velocity - gradient_to_faces(pressure)`` (``sx, sy = dx, dy``) or ``velocity -
    gradient_centered(pressure)`` (``centred``, ``2 dx, 2 dy``) of contiguous ``velocity (B, 2,
    ny, nx)`` and ``pressure (B, ny, nx)`` without autograd: ``(B, 2, ny, nx)``."""
    out = torch.empty_like(velocity)
    _call("subtract_gradient", velocity, velocity, pressure, sx, sy, int(centred), out)
    return out


def stencil_backward(
    name: str, out: torch.Tensor, *args: torch.Tensor | float | int
) -> torch.Tensor:
    """Run the compiled gradient ``{name}_backward`` of a stencil or of the energy rescale
    (:mod:`physgrad.physics.fluid.adjoints`) into ``out`` (contiguous, ``(B, 2, ny, nx)`` or
    ``(B, ny, nx)``); ``args`` are its contiguous tensors, grid spacings and counts in the C
    function's order."""
    _call(f"{name}_backward", out, *args, out)
    return out


def energy_factor_backward(
    velocity: torch.Tensor, e: torch.Tensor, target: torch.Tensor, factor: torch.Tensor,
    g_factor: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the energy ``factor`` of ``velocity (B, 2, ny, nx)`` (its mean squares
    ``e``, the ``target`` energies; :func:`~physgrad.physics.fluid.adjoints.energy_factor`)
    for ``g_factor`` (all contiguous, shaped like ``e``): ``(q, g_target)``, ``q`` the
    gradient of the mean square per cell (``g_e / cells``)."""
    q, g_target = torch.empty_like(e), torch.empty_like(e)
    _call("energy_factor_backward", velocity, e, target, factor, g_factor, e.shape[1], q,
          g_target)
    return q, g_target
