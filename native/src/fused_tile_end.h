// fused_tile_end.h: ends one instantiation of fused_tile_t.h (and the templates built on it), so
// that the next element type can be instantiated in the same file.
#undef TN2
#undef TN1
#undef TN
#undef NL
#undef TM
#undef V
#undef VBCAST
#undef GEMM_COLS
#undef GEMM_TILE
#undef GEMM_ROWS
#undef VI
#undef EBYTES
#undef EL
#undef E
#undef EI
#undef EBCAST
#undef T
#undef T_SIZE
#undef SFX
