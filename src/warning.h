// warning.h: run-time warnings of the library (MuJoCo's log), safe from many threads.
#ifndef DTAC_SRC_WARNING_H_
#define DTAC_SRC_WARNING_H_

// mju_warning with the message formatted first, one call at a time in the process: MuJoCo's
// default log handler is not safe to enter from several threads at once, and a batch's threads
// warn together (a device failure reaches every environment in the same phase)
void dtac_warning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

#endif  // DTAC_SRC_WARNING_H_
