/* For running ikd-field.exe under Wine only (scripts/windows-smoke.sh): never built into, shipped
   with or needed by the program on Windows, which has its own bcryptprimitives.dll.
   Copied from ../shared/windows/bcryptprimitives.c. */
/* Wine 8.0 (Debian 12) lacks bcryptprimitives.dll, which Rust's std (>= 1.78) and getrandom 0.3
   import for ProcessPrng. Real Windows 10/11 ship it. This stand-in forwards to RtlGenRandom
   (advapi32!SystemFunction036) so the exe can be exercised under wine; not part of the program. */
#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
