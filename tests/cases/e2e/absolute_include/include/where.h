#ifndef WHERE_H
#define WHERE_H
/* __FILE__ is the header's client path; -Wunused-variable warns here, naming that path too. */
static inline const char *header_file(void) {
    int unused = 0;
    return "in " __FILE__;
}
#endif
