// pybind11 peer: `Outer().x` returns the `Inner` stored inside the `Outer`, with
// `return_value_policy::reference_internal`: pybind11's registered-instance map hands back the
// live wrapper of that address while one exists; after it died, the next read builds a new one.
#include <pybind11/pybind11.h>

namespace py = pybind11;

struct Inner {
    long value = 1;
};

struct Outer {
    long tag = 0;  // so that `x` does not share its address with the `Outer` itself
    Inner x;
};

// mod_gil_not_used: the module declares itself free-threading safe (ignored with a GIL).
PYBIND11_MODULE(peers_pybind11, m, py::mod_gil_not_used()) {
    py::class_<Inner>(m, "Inner").def_readwrite("value", &Inner::value);
    py::class_<Outer>(m, "Outer")
        .def(py::init<>())
        .def_property_readonly("x", [](Outer &o) -> Inner & { return o.x; },
                               py::return_value_policy::reference_internal);
}
