#include "textflag.h"

// trampoline is called by runtime.asmcgocall on the g0 stack, with the C
// calling convention: DI points to a cargs {fn, a1..a6, r}. It calls fn with
// a1..a6 in the C argument registers and stores the result in r. The frame
// of 16 bytes (plus the saved BP and the return address) keeps SP 16-byte
// aligned at the CALL.
GLOBL ·trampolineABI0(SB), NOPTR|RODATA, $8
DATA ·trampolineABI0(SB)/8, $trampoline(SB)
TEXT trampoline(SB), NOSPLIT, $16
	MOVQ DI, 0(SP)
	MOVQ DI, R11
	MOVQ 8(R11), DI
	MOVQ 16(R11), SI
	MOVQ 24(R11), DX
	MOVQ 32(R11), CX
	MOVQ 40(R11), R8
	MOVQ 48(R11), R9
	MOVQ 0(R11), R10
	XORL AX, AX
	CALL R10
	MOVQ 0(SP), R11
	MOVQ AX, 56(R11)
	RET
