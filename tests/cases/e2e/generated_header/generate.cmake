# Writes OUT from IN every time (a new file, not a copy that keeps the old times).
file(READ ${IN} content)
file(WRITE ${OUT} "/* generated from gen.h.in */\n${content}")
