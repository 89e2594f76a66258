//! What the kernel guarantees, shown on the model frontend: one wrapper per native object,
//! revival at the same address, and convergence under threads.

use std::sync::atomic::Ordering::Relaxed;

use binding_core::model::{Config, ModelFrontend};

fn main() {
    let rt: ModelFrontend = ModelFrontend::new(Config {
        max_spins: 1_000_000,
        yield_after: 4,
        ..Config::default()
    });
    let obj = rt.object(7, None).erase();

    let a = rt.lookup(obj.clone());
    let b = rt.lookup(obj.clone());
    println!(
        "two lookups, one wrapper:        {:#x} == {:#x}",
        a.addr(),
        b.addr()
    );
    assert_eq!(a.addr(), b.addr());
    let addr = a.addr();
    drop((a, b));
    println!(
        "wrapper died; word is now:       {:?}",
        obj.header().binding_state()
    );

    let c = rt.lookup(obj.clone());
    println!(
        "refetched at the same address:   {:#x} (revived in place)",
        c.addr()
    );
    assert_eq!(c.addr(), addr);
    drop(c);

    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (rt, obj) = (rt.clone(), obj.clone());
            std::thread::spawn(move || (0..10_000).all(|_| rt.lookup(obj.clone()).addr() == addr))
        })
        .collect();
    let all_same = threads.into_iter().all(|t| t.join().unwrap());
    println!("8 threads x 10,000 refetches all returned {addr:#x}: {all_same}");
    assert!(all_same);

    drop(obj);
    rt.assert_quiescent();
    let s = &rt.stats;
    println!(
        "stats: fresh={} revivals={} hits={} wrappers_freed={} natives_freed={}",
        s.fresh.load(Relaxed),
        s.revivals.load(Relaxed),
        s.hits.load(Relaxed),
        s.wrappers_freed.load(Relaxed),
        s.natives_freed.load(Relaxed)
    );
}
