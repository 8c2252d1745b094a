package org.rsnetedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * The app's lean mode on the JVM: a recording runtime stands in for ExecuTorch's Module (load a
 * program file with some methods ready; release = Module.destroy()). Checked: which program file
 * is loaded for which entry (by its bytes), that lean mode releases the resident program BEFORE
 * loading the next, that only the program in use is unpacked, and that ALL keeps every program.
 */
public class ResidentProgramsTest {
  @Rule public TemporaryFolder tmp = new TemporaryFolder();

  private static final List<String> ENTRIES = Arrays.asList("forward_64", "forward_48", "forward_32");

  /** A loaded "module": the program bytes it was loaded from and its methods. */
  static final class Fake {
    final byte[] program;
    final List<String> methods;
    boolean released;

    Fake(byte[] program, List<String> methods) {
      this.program = program;
      this.methods = methods;
    }
  }

  /** Records load/release events in order; fails a load of a file named in {@code refuse}. */
  static final class Recorder implements ResidentPrograms.Loader<Fake> {
    final List<String> events = new ArrayList<String>();
    final List<Fake> live = new ArrayList<Fake>();
    String refuse;

    @Override
    public Fake load(File program, List<String> methods) throws IOException {
      if (program.getName().equals(refuse)) throw new IOException("refused " + program.getName());
      Fake f = new Fake(Files.readAllBytes(program.toPath()), methods);
      events.add("load " + methods);
      live.add(f);
      return f;
    }

    @Override
    public void release(Fake f) {
      assertTrue("released twice", live.remove(f));
      f.released = true;
      events.add("release " + f.methods);
    }
  }

  @Test
  public void leanKeepsOneProgramAndReleasesItBeforeLoadingTheNext() throws Exception {
    RsfoldFixture fx = new RsfoldFixture(3);
    File art = tmp.newFile("m.pte.rsfold");
    Files.write(art.toPath(), fx.container);
    File cache = new File(tmp.getRoot(), "rsfold");
    Recorder rt = new Recorder();
    ResidentPrograms<Fake> p = new ResidentPrograms<Fake>(art, cache, ENTRIES, ResidentPrograms.Mode.ONE, rt);
    assertEquals(0, p.snapshot().resident);
    assertTrue(!cache.exists() || cache.list().length == 0); // nothing unpacked before it is needed

    Fake a = p.module("forward_48");
    assertArrayEquals(fx.programs.get(1), a.program);
    assertEquals(Arrays.asList("forward_48"), a.methods);
    assertEquals(1, cache.list().length); // only that program was unpacked
    assertSame(a, p.module("forward_48")); // no reload
    ResidentPrograms.Snapshot s = p.snapshot();
    assertEquals(1, s.resident);
    assertEquals(3, s.programs);
    assertEquals(fx.programs.get(1).length, s.residentBytes);
    assertEquals(Arrays.asList("forward_48"), s.residentEntries);
    assertTrue(s.lastUnpacked);

    Fake b = p.module("forward_64");
    assertTrue(a.released);
    assertArrayEquals(fx.programs.get(0), b.program);
    assertEquals(Arrays.asList("load [forward_48]", "release [forward_48]", "load [forward_64]"), rt.events);
    assertEquals(1, rt.live.size());
    assertEquals(2, cache.list().length);

    p.module("forward_48"); // back: already unpacked, loaded again
    assertEquals(1, rt.live.size());
    assertEquals(3, p.snapshot().loads);
    assertTrue(!p.snapshot().lastUnpacked);
    p.close();
    assertEquals(0, rt.live.size());
    assertEquals(0, p.snapshot().resident);
  }

  @Test
  public void allKeepsEveryProgram() throws Exception {
    RsfoldFixture fx = new RsfoldFixture(3);
    File art = tmp.newFile("m.pte.rsfold");
    Files.write(art.toPath(), fx.container);
    Recorder rt = new Recorder();
    ResidentPrograms<Fake> p =
        new ResidentPrograms<Fake>(art, tmp.newFolder("c"), ENTRIES, ResidentPrograms.Mode.ALL, rt);
    p.loadAll();
    assertEquals(3, rt.live.size());
    assertEquals(3, p.snapshot().resident);
    long total = 0;
    for (byte[] b : fx.programs) total += b.length;
    assertEquals(total, p.snapshot().residentBytes);
    for (int k = 0; k < 3; k++) assertArrayEquals(fx.programs.get(k), p.module(ENTRIES.get(k)).program);
    assertEquals(3, rt.events.size()); // switching loaded nothing more, released nothing
  }

  @Test
  public void aPlainProgramIsLoadedOnceWithEveryMethod() throws Exception {
    File pte = tmp.newFile("m.pte");
    byte[] bytes = "not RSFOLD: a plain program".getBytes("UTF-8");
    Files.write(pte.toPath(), bytes);
    Recorder rt = new Recorder();
    ResidentPrograms<Fake> p =
        new ResidentPrograms<Fake>(pte, tmp.newFolder("c"), ENTRIES, ResidentPrograms.Mode.ONE, rt);
    Fake a = p.module("forward_32");
    assertSame(a, p.module("forward_64"));
    assertEquals(ENTRIES, a.methods);
    assertArrayEquals(bytes, a.program);
    assertEquals(Arrays.asList("load " + ENTRIES), rt.events);
    assertEquals(1, p.snapshot().programs);
  }

  @Test
  public void anEntryNoProgramServesIsOneLineAtStart() throws Exception {
    RsfoldFixture fx = new RsfoldFixture(2); // forward_64 (+ forward), forward_48: no forward_32
    File art = tmp.newFile("m.pte.rsfold");
    Files.write(art.toPath(), fx.container);
    try {
      new ResidentPrograms<Fake>(art, tmp.newFolder("c"), ENTRIES, ResidentPrograms.Mode.ONE, new Recorder());
      fail("accepted a manifest entry the artifact does not serve");
    } catch (RsfoldException e) {
      assertEquals("m.pte.rsfold has no program for entry point forward_32", e.getMessage());
    }
  }

  @Test
  public void aProgramTheRuntimeRefusesLeavesNothingLoadedAndIsNotRetried() throws Exception {
    RsfoldFixture fx = new RsfoldFixture(3);
    File art = tmp.newFile("m.pte.rsfold");
    Files.write(art.toPath(), fx.container);
    Recorder rt = new Recorder();
    rt.refuse = RsfoldFixture.sha(fx.programs.get(2)) + ".pte";
    ResidentPrograms<Fake> p =
        new ResidentPrograms<Fake>(art, tmp.newFolder("c"), ENTRIES, ResidentPrograms.Mode.ONE, rt);
    p.module("forward_64");
    for (int i = 0; i < 2; i++) {
      try {
        p.module("forward_32");
        fail("loaded a refused program");
      } catch (IOException e) {
        assertEquals("refused " + rt.refuse, e.getMessage());
      }
    }
    assertEquals(Arrays.asList("load [forward_64]", "release [forward_64]"), rt.events); // one try only
    assertEquals(0, p.snapshot().resident);
    p.module("forward_48"); // another entry still works
    assertEquals(1, rt.live.size());
  }
}
