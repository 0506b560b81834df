/* Compiled before the custom command runs: the include analysis sees gen.h absent here, and
   must find it once it appears. */
#if __has_include("gen.h")
#error "gen.h exists before the custom command ran"
#endif
int early(void) { return 0; }
