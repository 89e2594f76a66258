// compile.cpp: tether.h as C++ (ci/c-abi.sh builds it with c++ -std=c++17 -Wall -Wextra -Werror
// and runs it). It uses the header's types, constants, enums and functions the way a C++ object
// system would: callbacks from captureless lambdas, the binding embedded in a class's header.
#include "tether.h"

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <type_traits>

static_assert(sizeof(TetherWord) == TETHER_WORD_SIZE, "TETHER_WORD_SIZE");
static_assert(alignof(TetherWord) == TETHER_WORD_ALIGN, "TETHER_WORD_ALIGN");
static_assert(sizeof(TetherSlot) == sizeof(void *), "a slot is one pointer");
static_assert(std::is_standard_layout<TetherBinding>::value, "TetherBinding is plain C");
static_assert(std::is_trivially_copyable<TetherBaton>::value, "TetherBaton is plain C");
static_assert(TETHER_STATUS_OK == 0 && TETHER_FOUND_REPLACED == 3, "enum values are the ABI's");

namespace {

// An intrusive-counted C++ object with the binding in its header.
struct Node {
    std::atomic<std::size_t> strong{1};
    TetherBinding binding;
    int value = 42;
};

Node *node_of(TetherBinding *b) {
    return reinterpret_cast<Node *>(reinterpret_cast<char *>(b) - offsetof(Node, binding));
}

struct alignas(TETHER_WRAPPER_ALIGN) Wrapper {
    std::atomic<std::size_t> refcnt{1};
    TetherSlot slot;
    TetherBaton baton;
};

// Callbacks from captureless lambdas; fields assigned by name (the table may grow).
TetherRuntime make_runtime() {
    TetherRuntime rt{};
    rt.abi_version = TETHER_ABI_VERSION;
    rt.try_incref = [](void *, TetherWrapper *) -> bool { return false; };
    rt.free_cached = [](void *, TetherWrapper *w) { delete reinterpret_cast<Wrapper *>(w); };
    rt.retain = [](void *, TetherBinding *b) { node_of(b)->strong.fetch_add(1); };
    rt.release = [](void *, TetherBinding *b) {
        Node *n = node_of(b);
        if (n->strong.fetch_sub(1) != 1) return;
        TetherReclaimed r;
        if (tether_reclaim(b, &r) == TETHER_STATUS_OK && r == TETHER_RECLAIMED_FREE) delete n;
    };
    rt.free_object = [](void *, TetherBinding *b) { delete node_of(b); };
    return rt;
}

const TetherRuntime runtime = make_runtime();

}  // namespace

int main() {
    if (tether_abi_version() != TETHER_ABI_VERSION) {
        std::fprintf(stderr, "compile.cpp: ABI %u, header %d\n", tether_abi_version(),
                     TETHER_ABI_VERSION);
        return 1;
    }
    TetherRuntime incomplete = runtime;
    incomplete.retain = nullptr;
    Node *n = new Node;
    if (tether_binding_init(&n->binding, &incomplete) != TETHER_STATUS_INCOMPLETE_RUNTIME ||
        tether_binding_init(&n->binding, &runtime) != TETHER_STATUS_OK) {
        std::fprintf(stderr, "compile.cpp: tether_binding_init\n");
        return 1;
    }
    TetherState state = TETHER_STATE_ACTIVE;
    TetherWrapper *hit = nullptr;
    if (tether_binding_state(&n->binding, &state) != TETHER_STATUS_OK ||
        state != TETHER_STATE_DETACHED || tether_hit(&n->binding, &hit) != TETHER_STATUS_OK ||
        hit != nullptr) {
        std::fprintf(stderr, "compile.cpp: a new binding is not Detached\n");
        return 1;
    }
    TetherBaton unfilled{};
    TetherSettled settled;
    if (tether_settle(&unfilled, &settled) != TETHER_STATUS_INVALID_BATON) {
        std::fprintf(stderr, "compile.cpp: an unfilled baton settled\n");
        return 1;
    }
    runtime.release(nullptr, &n->binding);  // the last reference: reclaim says FREE
    std::printf("compile.cpp: tether.h compiles as C++17; ABI version %u\n", tether_abi_version());
    return 0;
}
