"""A loader of ELF64 relocatable objects (``.o``) into this process, in plain Python.

Numba compiles each kernel (and the engine's entry) to an object file with the
large code model: every reference to another symbol is an absolute 64-bit
address patched at load. :func:`load` copies an object's allocated sections into
fresh anonymous pages, applies its RELA relocations, resolves what it imports
(libc, libm, the Python C API, numba's C helpers) with ``dlsym``, then makes the
code pages read-only and executable. No compiler, llvmlite or numba is
imported: this is how :mod:`edgernn.kernels.native` starts a model from the disk
cache in a small process.

Supported: x86-64 (``R_X86_64_64``, ``PC32``/``PLT32`` in range, ``PC64``,
``GOTPCREL(X)``) and AArch64 (``ABS64``, ``PREL32``/``PREL64``, ``MOVW_UABS_G0..G3``,
``CALL26``/``JUMP26`` through a veneer, ``ADR_PREL_PG_HI21``, ``ADD``/``LDST*_ABS_LO12_NC``,
``ADR_GOT_PAGE``/``LD64_GOT_LO12_NC``). Anything else
raises :class:`NativeError`, and the caller compiles with numba instead.
"""

from __future__ import annotations

import ctypes
import mmap
import struct

X86_64, AARCH64 = 62, 183
_SHF_WRITE, _SHF_ALLOC, _SHF_EXEC = 1, 2, 4
_SHT_SYMTAB, _SHT_RELA, _SHT_NOBITS = 2, 4, 8
_SHN_UNDEF, _SHN_ABS, _SHN_COMMON = 0, 0xFFF1, 0xFFF2
_PAGE = mmap.PAGESIZE
_STUB = 16                     # bytes of one veneer (an import's absolute jump)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_KEEP: list = []               # every mapping stays mapped for the life of the process
#: GOT relocations -> the relocation applied to the GOT slot's address instead: x86-64
#: GOTPCREL, GOTPCRELX, REX_GOTPCRELX -> PC32; AArch64 ADR_GOT_PAGE -> ADR_PREL_PG_HI21,
#: LD64_GOT_LO12_NC -> LDST64_ABS_LO12_NC
_GOT = {"x86_64": {9: 2, 41: 2, 42: 2}, "aarch64": {311: 275, 312: 286}}


class NativeError(Exception):
    """An object that cannot be loaded here (format, architecture, relocation, symbol)."""


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a if a > 1 else n


class _Object:
    """The parsed parts of one ELF64 little-endian relocatable object."""

    def __init__(self, data: bytes, name: str):
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise NativeError(f"{name}: not an ELF64 little-endian object")
        etype, self.machine = struct.unpack_from("<HH", data, 16)
        if etype != 1:
            raise NativeError(f"{name}: not a relocatable object (e_type {etype})")
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        if shoff + shnum * shentsize > len(data) or shentsize != 64 or shstrndx >= shnum:
            raise NativeError(f"{name}: truncated or corrupt section table")
        self.data, self.name = data, name
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * 64)
                         for i in range(shnum)]
        for s in self.sections:
            if s[1] != _SHT_NOBITS and s[4] + s[5] > len(data):
                raise NativeError(f"{name}: a section lies outside the file")
        strtab = self.sections[shstrndx]
        self.names = [self._str(strtab, s[0]) for s in self.sections]

    def _str(self, sec, off: int) -> str:
        start = sec[4] + off
        return self.data[start:self.data.index(b"\0", start)].decode()

    def symbols(self):
        """``[(name, shndx, value, size)]`` of the symbol table."""
        for s in self.sections:
            if s[1] == _SHT_SYMTAB:
                strtab = self.sections[s[6]]
                return [(self._str(strtab, n), shndx, value, size) for n, _, _, shndx, value, size
                        in (struct.unpack_from("<IBBHQQ", self.data, s[4] + j * 24)
                            for j in range(s[5] // 24))]
        raise NativeError(f"{self.name}: no symbol table")


def _resolve(name: str, libs) -> int:
    for lib in (_libc, *(libs() if callable(libs) else libs)):
        try:
            return ctypes.cast(lib[name], ctypes.c_void_p).value
        except AttributeError:
            continue
    raise NativeError(f"undefined symbol {name!r}")


def load(data: bytes, name: str, extra: dict[str, int], libs=()) -> dict[str, int]:
    """Load the object ``data`` and return the addresses of the symbols it defines.

    Parameters
    ----------
    data : the object file's bytes
    name : what to call it in errors
    extra : addresses of symbols it may import, looked up before ``dlsym``
    libs : ctypes libraries searched after this process's own symbols (or a function
        returning them, called only when some symbol is not found in the process)
    """
    obj = _Object(data, name)
    arch = {X86_64: "x86_64", AARCH64: "aarch64"}.get(obj.machine)
    if arch is None:
        raise NativeError(f"{name}: unsupported machine {obj.machine}")
    symbols = obj.symbols()
    # sections to map: allocated ones but the unwind tables (no exception crosses them)
    keep = {i for i, s in enumerate(obj.sections)
            if s[2] & _SHF_ALLOC and s[5] and not obj.names[i].startswith(".eh_frame")}
    layout, size = {}, 0
    for writable in (False, True):
        for i in sorted(keep):
            s = obj.sections[i]
            if bool(s[2] & _SHF_WRITE) == writable:
                size = _align(size, max(s[8], 1))
                layout[i] = size
                size += s[5]
        if not writable:
            n_imports = sum(1 for _, shndx, _, _ in symbols if shndx == _SHN_UNDEF)
            stubs = size = _align(size, 16)
            size += _STUB * n_imports
            got = size                        # a GOT slot per symbol, for GOT relocations
            size += 8 * len(symbols)
            rx_end = size = _align(size, _PAGE)
    commons = {}
    for j, (_, shndx, value, ssize) in enumerate(symbols):
        if shndx == _SHN_COMMON:
            size = _align(size, max(value, 8))
            commons[j] = size
            size += max(ssize, 1)
    size = _align(max(size, 1), _PAGE)
    mem = mmap.mmap(-1, size, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    for i, off in layout.items():
        s = obj.sections[i]
        if s[1] != _SHT_NOBITS:
            mem[off:off + s[5]] = data[s[4]:s[4] + s[5]]
    addr, stub_of = {}, {}
    for j, (sname, shndx, value, _) in enumerate(symbols):
        if j in commons:
            addr[j] = base + commons[j]
        elif shndx == _SHN_ABS:
            addr[j] = value
        elif shndx == _SHN_UNDEF:
            if j == 0 or not sname:
                addr[j] = 0
                continue
            addr[j] = extra[sname] if sname in extra else _resolve(sname, libs)
            stub_of[j] = stubs
            _write_stub(mem, stubs, addr[j], arch)
            stubs += _STUB
        elif shndx in layout:
            addr[j] = base + layout[shndx] + value
        elif shndx < len(obj.sections):
            addr[j] = 0   # a symbol of a section not mapped (debug, unwind)
    for s in obj.sections:
        if s[1] != _SHT_RELA or s[7] not in layout:
            continue
        target = layout[s[7]]
        for k in range(s[5] // 24):
            r_off, info, addend = struct.unpack_from("<QQq", data, s[4] + k * 24)
            j, kind = info >> 32, info & 0xFFFFFFFF
            if j >= len(symbols):
                raise NativeError(f"{name}: relocation names symbol {j} of {len(symbols)}")
            at = target + r_off
            S = addr[j]
            if j in stub_of and kind in (4, 282, 283):   # a call to an import: its veneer
                S = base + stub_of[j]
            if kind in _GOT[arch]:   # through the symbol's GOT slot, which holds S
                _put(mem, got + 8 * j, "<Q", S)
                S, kind = base + got + 8 * j, _GOT[arch][kind]
            _relocate(mem, at, base + at, kind, S + addend, arch, name)
    if _libc.mprotect(base, rx_end, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        raise NativeError(f"{name}: mprotect failed (errno {ctypes.get_errno()})")
    if arch == "aarch64":   # the instruction cache does not see the data writes by itself
        _clear_cache(base, base + rx_end)
    _KEEP.append(mem)
    return {sname: addr[j] for j, (sname, shndx, _, _) in enumerate(symbols)
            if sname and shndx != _SHN_UNDEF and j in addr}


def _clear_cache(start: int, end: int) -> None:
    for lib in (_libc, "libgcc_s.so.1"):
        try:
            fn = (ctypes.CDLL(lib) if isinstance(lib, str) else lib)["__clear_cache"]
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        fn(start, end)
        return
    raise NativeError("no __clear_cache to flush the instruction cache")


def _write_stub(mem, off: int, target: int, arch: str) -> None:
    if arch == "x86_64":   # movabs r11, target; jmp r11
        mem[off:off + 13] = b"\x49\xbb" + struct.pack("<Q", target) + b"\x41\xff\xe3"
    else:                  # ldr x16, #8; br x16; .quad target
        mem[off:off + 16] = struct.pack("<IIQ", 0x58000050, 0xD61F0200, target)


def _put(mem, at: int, fmt: str, value: int) -> None:
    struct.pack_into(fmt, mem, at, value)


def _relocate(mem, at: int, P: int, kind: int, V: int, arch: str, name: str) -> None:
    """Apply relocation ``kind`` at offset ``at`` (address ``P``); ``V`` = S + A."""
    if arch == "x86_64":
        if kind == 1:                       # R_X86_64_64
            return _put(mem, at, "<Q", V & (2**64 - 1))
        if kind == 24:                      # R_X86_64_PC64
            return _put(mem, at, "<q", V - P)
        if kind in (2, 4):                  # R_X86_64_PC32, PLT32
            d = V - P
            if -2**31 <= d < 2**31:
                return _put(mem, at, "<i", d)
            raise NativeError(f"{name}: 32-bit relocation out of range")
    else:
        if kind == 257:                     # R_AARCH64_ABS64
            return _put(mem, at, "<Q", V & (2**64 - 1))
        if kind == 260:                     # PREL64
            return _put(mem, at, "<q", V - P)
        if kind == 261:                     # PREL32
            return _put(mem, at, "<i", V - P)
        ins, = struct.unpack_from("<I", mem, at)
        if 263 <= kind <= 270:              # MOVW_UABS_G0(_NC) .. G3
            shift = 16 * ((kind - 263) // 2)
            ins = (ins & ~(0xFFFF << 5)) | (((V >> shift) & 0xFFFF) << 5)
        elif kind in (282, 283):            # JUMP26, CALL26
            d = V - P
            if not -2**27 <= d < 2**27:
                raise NativeError(f"{name}: branch out of range")
            ins = (ins & 0xFC000000) | ((d >> 2) & 0x3FFFFFF)
        elif kind == 275:                   # ADR_PREL_PG_HI21
            d = ((V & ~0xFFF) - (P & ~0xFFF)) >> 12
            ins = (ins & 0x9F00001F) | ((d & 3) << 29) | (((d >> 2) & 0x7FFFF) << 5)
        elif kind in (277, 278, 284, 285, 286, 299):   # ADD / LDST8..128 _ABS_LO12_NC
            scale = {277: 0, 278: 0, 284: 1, 285: 2, 286: 3, 299: 4}[kind]
            ins = (ins & ~(0xFFF << 10)) | ((((V & 0xFFF) >> scale) & 0xFFF) << 10)
        else:
            raise NativeError(f"{name}: unsupported AArch64 relocation {kind}")
        return _put(mem, at, "<I", ins & 0xFFFFFFFF)
    raise NativeError(f"{name}: unsupported x86-64 relocation {kind}")
