// nanobind peer: `Outer().x` returns the `Inner` stored inside the `Outer`, with
// `rv_policy::reference_internal`: nanobind's instance map hands back the live wrapper of that
// address while one exists; after it died, the next read builds a new one. The wrapper keeps
// its `Outer` alive (the "internal" part).
#include <nanobind/nanobind.h>

namespace nb = nanobind;

struct Inner {
    long value = 1;
};

struct Outer {
    long tag = 0;  // so that `x` does not share its address with the `Outer` itself
    Inner x;
};

NB_MODULE(peers_nanobind, m) {
    nb::class_<Inner>(m, "Inner").def_rw("value", &Inner::value);
    nb::class_<Outer>(m, "Outer")
        .def(nb::init<>())
        .def_prop_ro("x", [](Outer &o) -> Inner & { return o.x; },
                     nb::rv_policy::reference_internal);
}
