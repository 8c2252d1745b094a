// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.lifecycle:lifecycle-common (via appcompat 1.7.0), lifecycle/lifecycle-common/src/.../LifecycleOwner.kt; the app only passes `this` as one; NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/lifecycle/LifecycleOwner
// Only the members the app uses; every body throws.
package androidx.lifecycle;

public interface LifecycleOwner {
}
