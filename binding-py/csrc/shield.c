/* Calls back into Python on CPython 3.11-3.13 go through these shields.  If the call ends in
   pthread_exit (a daemon thread re-taking the GIL while the interpreter finalizes), glibc's
   forced unwind reaches the cleanup buffer registered here (old-style pthread_cleanup_push:
   setjmp + __pthread_register_cancel when compiled without -fexceptions; a cleanup attribute
   with -fexceptions) before it reaches any Rust frame, and the thread hangs forever, as
   CPython 3.14's PyThread_hang_thread does.  No Rust frame is ever unwound or deallocated. */
#include <pthread.h>
#include <unistd.h>

typedef struct _object PyObject;
typedef PyObject *(*tether_fn1)(PyObject *);
typedef PyObject *(*tether_fn3)(PyObject *, PyObject *, PyObject *);

static void tether_hang_forever(void *unused) {
    (void)unused;
    for (;;)
        pause();
}

PyObject *tether_shielded_call1(tether_fn1 f, PyObject *a) {
    PyObject *r;
    pthread_cleanup_push(tether_hang_forever, NULL);
    r = f(a);
    pthread_cleanup_pop(0);
    return r;
}

PyObject *tether_shielded_call3(tether_fn3 f, PyObject *a, PyObject *b, PyObject *c) {
    PyObject *r;
    pthread_cleanup_push(tether_hang_forever, NULL);
    r = f(a, b, c);
    pthread_cleanup_pop(0);
    return r;
}
