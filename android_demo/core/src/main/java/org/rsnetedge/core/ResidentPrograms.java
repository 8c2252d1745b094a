package org.rsnetedge.core;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which programs of an artifact are loaded, for the app's lean mode (issue 20) - the Java side of
 * {@code rsnet_edge.load(path, resident="one"|"all")}, kept out of the Android layer so that it runs
 * (and is tested) on the JVM; the app plugs the ExecuTorch {@code Module} in as {@code M}.
 *
 * <ul>
 *   <li>An RSFOLD version-2 artifact holds one program per resolution. The program serving an
 *       entry is unpacked ({@link FoldUnpacker#cachedUnpack(File, File, String)}, only that one)
 *       and loaded the first time the entry runs.
 *   <li>{@link Mode#ONE} (lean, the app's default): only the program serving the current entry is
 *       loaded; a switch to an entry of another program releases the current one FIRST (ExecuTorch:
 *       {@code Module.destroy()}, which frees the program, its methods and their packed weights;
 *       the Java API cannot unload one method) and then loads the next, so at most one program is
 *       ever resident. A switch costs one program load (already unpacked after its first use).
 *   <li>{@link Mode#ALL}: every program stays loaded once used ({@link #loadAll()} loads them all
 *       up front); switching is then free, at about S times the memory.
 *   <li>A plain program ({@code .pte}: one program with every method) or a version-1 container (one
 *       program serving every entry): one program, loaded once, whatever the mode.
 * </ul>
 * A program that failed to load is not tried again (its one-line error is thrown again) until a
 * new instance is made. Not thread-safe: call everything from one thread (the app's worker); {@link #snapshot()} may be
 * read from any thread.
 */
public final class ResidentPrograms<M> {
  /** How many programs stay loaded. */
  public enum Mode {
    /** Only the program in use (lean). */
    ONE,
    /** Every program once used. */
    ALL
  }

  /** The runtime (the app: ExecuTorch): load a program file with the given methods ready, and release it. */
  public interface Loader<M> {
    M load(File program, List<String> methods) throws IOException;

    void release(M module);
  }

  /** What is loaded now (immutable; for the screen). */
  public static final class Snapshot {
    public final Mode mode;
    /** Programs the artifact holds, and how many of them are loaded now. */
    public final int programs;
    public final int resident;
    /** Bytes of the program files loaded now (what the runtime read into memory, before packing). */
    public final long residentBytes;
    /** The entries the loaded programs serve (manifest order). */
    public final List<String> residentEntries;
    /** Program loads so far (the first one included), and the wall time of the last one in ms (unpack included). */
    public final int loads;
    public final double lastLoadMs;
    /** True when the last load had to unpack its program (not already in the cache). */
    public final boolean lastUnpacked;

    Snapshot(Mode mode, int programs, int resident, long residentBytes, List<String> residentEntries,
        int loads, double lastLoadMs, boolean lastUnpacked) {
      this.mode = mode;
      this.programs = programs;
      this.resident = resident;
      this.residentBytes = residentBytes;
      this.residentEntries = Collections.unmodifiableList(residentEntries);
      this.loads = loads;
      this.lastLoadMs = lastLoadMs;
      this.lastUnpacked = lastUnpacked;
    }
  }

  private static final class Loaded<M> {
    final M module;
    final long bytes;

    Loaded(M module, long bytes) {
      this.module = module;
      this.bytes = bytes;
    }
  }

  private final File artifact;
  private final File cacheDir;
  private final Mode mode;
  private final Loader<M> runtime;
  private final List<String> entries;
  private final RsfoldHeader header; // null: a plain program
  private final Map<String, Integer> programOf = new LinkedHashMap<String, Integer>();
  private final Map<Integer, Loaded<M>> loaded = new LinkedHashMap<Integer, Loaded<M>>();
  private final Map<Integer, String> failed = new HashMap<Integer, String>();
  private int loads;
  private double lastLoadMs = Double.NaN;
  private boolean lastUnpacked;
  private volatile Snapshot snapshot;

  /**
   * {@code entries}: the manifest's entry points, each of which must be served by a program (else
   * one line: {@code <artifact> has no program for entry point forward_96}). Nothing is loaded yet.
   */
  public ResidentPrograms(File artifact, File cacheDir, List<String> entries, Mode mode, Loader<M> runtime)
      throws IOException {
    this.artifact = artifact;
    this.cacheDir = cacheDir;
    this.mode = mode;
    this.runtime = runtime;
    this.entries = new ArrayList<String>(entries);
    this.header = FoldUnpacker.isRsfold(artifact) ? RsfoldHeader.read(artifact) : null;
    for (String e : entries) programOf.put(e, header == null ? 0 : header.outputFor(e).index);
    publish();
  }

  /** Programs the artifact holds. */
  public int programs() {
    return header == null ? 1 : header.outputs.size();
  }

  /** The loaded program serving {@code entry}: loads it now if needed (lean: releasing the other first). */
  public M module(String entry) throws IOException {
    Integer k = programOf.get(entry);
    if (k == null) throw new IOException(artifact.getName() + ": " + entry + " is not an entry of its manifest");
    Loaded<M> have = loaded.get(k);
    if (have != null) return have.module;
    String failure = failed.get(k);
    if (failure != null) throw new IOException(failure);
    if (mode == Mode.ONE) releaseAll();
    return load(k).module;
  }

  /** {@link Mode#ALL}: load every program now (a plain program: its one). */
  public void loadAll() throws IOException {
    for (int k = 0; k < programs(); k++) {
      if (!loaded.containsKey(k) && programOf.containsValue(k)) load(k);
    }
  }

  private Loaded<M> load(int k) throws IOException {
    try {
      return tryLoad(k);
    } catch (IOException e) {
      failed.put(k, e.getMessage()); // not retried on every frame; the message stays on screen
      throw e;
    }
  }

  private Loaded<M> tryLoad(int k) throws IOException {
    long t0 = System.nanoTime();
    File program = artifact;
    boolean unpacked = false;
    if (header != null) {
      FoldUnpacker.Unpacked u = FoldUnpacker.cachedUnpack(artifact, cacheDir, firstEntryOf(k));
      program = u.file;
      unpacked = !u.reused;
    }
    List<String> methods = new ArrayList<String>();
    for (String e : entries) if (programOf.get(e) == k) methods.add(e);
    Loaded<M> l = new Loaded<M>(runtime.load(program, methods), program.length());
    loaded.put(k, l);
    loads++;
    lastLoadMs = (System.nanoTime() - t0) / 1e6;
    lastUnpacked = unpacked;
    publish();
    return l;
  }

  private String firstEntryOf(int k) {
    for (Map.Entry<String, Integer> e : programOf.entrySet()) if (e.getValue() == k) return e.getKey();
    throw new IllegalStateException("no entry of program " + k);
  }

  private void releaseAll() {
    for (Loaded<M> l : loaded.values()) runtime.release(l.module);
    loaded.clear();
    publish();
  }

  /** Release everything (the app's onDestroy). */
  public void close() {
    releaseAll();
  }

  /** What is loaded now; safe to read from any thread. */
  public Snapshot snapshot() {
    return snapshot;
  }

  private void publish() {
    long bytes = 0;
    List<String> names = new ArrayList<String>();
    for (Map.Entry<Integer, Loaded<M>> l : loaded.entrySet()) bytes += l.getValue().bytes;
    for (String e : entries) if (loaded.containsKey(programOf.get(e))) names.add(e);
    snapshot = new Snapshot(mode, programs(), loaded.size(), bytes, names, loads, lastLoadMs, lastUnpacked);
  }
}
