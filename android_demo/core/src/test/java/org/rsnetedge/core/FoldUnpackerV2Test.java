package org.rsnetedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * Version-2 containers (one program per resolution): per-entry unpacking, the folder form, the
 * unpack cache per entry, stale temp files, and the bounds of issue 21 item 2 with the messages
 * rsnet_edge/rsfold.py gives (tests/test_android_core.py compares them with Python itself).
 */
public class FoldUnpackerV2Test {
  @Rule public TemporaryFolder tmp = new TemporaryFolder();

  private File write(String name, byte[] data) throws IOException {
    File f = new File(tmp.getRoot(), name);
    Files.write(f.toPath(), data);
    return f;
  }

  @Test
  public void unpacksEachProgramByItsEntryPoints() throws Exception {
    RsfoldFixture fx = new RsfoldFixture(3);
    File in = write("m.pte.rsfold", fx.container);
    RsfoldHeader h = FoldUnpacker.readHeader(in);
    assertEquals(2, h.version);
    assertEquals(3, h.outputs.size());
    assertEquals(Arrays.asList("forward_64", "forward", "forward_48", "forward_32"),
        new java.util.ArrayList<String>(h.entryNames()));
    for (int k = 0; k < 3; k++) {
      for (String e : fx.entries.get(k)) {
        File out = new File(tmp.getRoot(), e + ".out");
        String sha = FoldUnpacker.unpack(in, e, out);
        assertArrayEquals(e, fx.programs.get(k), Files.readAllBytes(out.toPath()));
        assertEquals(RsfoldFixture.sha(fx.programs.get(k)), sha);
      }
    }
    try {
      FoldUnpacker.unpack(in, new File(tmp.getRoot(), "x.pte"));
      fail("picked one of several programs");
    } catch (RsfoldException e) {
      assertTrue(e.getMessage(), e.getMessage().startsWith("m.pte.rsfold holds 3 programs"));
    }
    try {
      FoldUnpacker.unpack(in, "forward_8", new File(tmp.getRoot(), "x.pte"));
      fail("unpacked an entry no program serves");
    } catch (RsfoldException e) {
      assertEquals("m.pte.rsfold has no program for entry point forward_8", e.getMessage());
    }
  }

  @Test
  public void unpacksAllIntoAFolderAllOrNothing() throws Exception {
    RsfoldFixture fx = new RsfoldFixture(3);
    File in = write("m.pte.rsfold", fx.container);
    File dir = new File(tmp.getRoot(), "all");
    List<FoldUnpacker.Unpacked> got = FoldUnpacker.unpackAll(in, dir);
    assertEquals(3, got.size());
    for (int k = 0; k < 3; k++) {
      assertEquals(fx.entries.get(k)[0] + ".pte", got.get(k).file.getName());
      assertArrayEquals(fx.programs.get(k), Files.readAllBytes(got.get(k).file.toPath()));
    }
    // the LAST program's sha256 is wrong: nothing at all is written, not even the folder
    String bad = fx.header.replace(RsfoldFixture.sha(fx.programs.get(2)), repeat('0', 64));
    File in2 = write("bad.pte.rsfold", RsfoldFixture.container(bad, fx.payload));
    File dir2 = new File(tmp.getRoot(), "none");
    try {
      FoldUnpacker.unpackAll(in2, dir2);
      fail("unpacked a corrupt program");
    } catch (RsfoldException e) {
      assertTrue(e.getMessage(), e.getMessage().startsWith("bad.pte.rsfold program 2 is corrupt: it unpacks to sha256 "));
    }
    assertFalse(dir2.exists());
  }

  @Test
  public void cachedUnpackUnpacksOnlyTheProgramOfTheEntry() throws Exception {
    RsfoldFixture fx = new RsfoldFixture(3);
    File in = write("m.pte.rsfold", fx.container);
    File dir = new File(tmp.getRoot(), "cache");
    FoldUnpacker.Unpacked u = FoldUnpacker.cachedUnpack(in, dir, "forward_48");
    assertFalse(u.reused);
    assertEquals(Arrays.asList(RsfoldFixture.sha(fx.programs.get(1)) + ".pte"), Arrays.asList(dir.list()));
    assertArrayEquals(fx.programs.get(1), Files.readAllBytes(u.file.toPath()));
    assertTrue(FoldUnpacker.cachedUnpack(in, dir, "forward_48").reused);
    FoldUnpacker.Unpacked top = FoldUnpacker.cachedUnpack(in, dir, "forward");
    assertArrayEquals(fx.programs.get(0), Files.readAllBytes(top.file.toPath()));
    assertEquals(2, dir.list().length);
    byte[] damaged = Files.readAllBytes(top.file.toPath());
    damaged[3] ^= 1;
    Files.write(top.file.toPath(), damaged);
    FoldUnpacker.Unpacked fixed = FoldUnpacker.cachedUnpack(in, dir, "forward_64");
    assertFalse(fixed.reused);
    assertArrayEquals(fx.programs.get(0), Files.readAllBytes(fixed.file.toPath()));
  }

  @Test
  public void removesTempFilesOfDeadWritersOnly() throws Exception {
    RsfoldFixture fx = new RsfoldFixture(2);
    File in = write("m.pte.rsfold", fx.container);
    File dir = tmp.newFolder("cache");
    String dead = ".abc.tmp-999999999-0123abcd.pte"; // above any pid_max: no such process
    String live = ".abc.tmp-" + TempFiles.pid() + "-0123abcd.pte";
    String other = ".abc.tmp-12345"; // not our pattern (e.g. File.createTempFile): left alone
    for (String n : new String[] {dead, live, other}) assertTrue(new File(dir, n).createNewFile());
    FoldUnpacker.cachedUnpack(in, dir, "forward_48");
    assertFalse(new File(dir, dead).exists());
    assertTrue(new File(dir, live).exists());
    assertTrue(new File(dir, other).exists());
    assertEquals(3, dir.list().length); // live + other + the program: no temp of its own left
  }

  private void refuses(String header, byte[] payload, String msg) throws Exception {
    refuses(RsfoldFixture.container(header, payload), msg);
  }

  private void refuses(byte[] container, String msg) throws Exception {
    File in = write("bad.pte.rsfold", container);
    File out = new File(tmp.getRoot(), "out");
    try {
      FoldUnpacker.unpackAll(in, out);
      fail("unpacked a container that should fail with: " + msg);
    } catch (RsfoldException e) {
      assertEquals(msg, e.getMessage());
    }
    assertEquals(Arrays.asList("bad.pte.rsfold"), Arrays.asList(tmp.getRoot().list()));
    assertTrue(in.delete());
  }

  private static String amplified(String op, long size) {
    StringBuilder ops = new StringBuilder();
    for (int i = 0; i < 400; i++) ops.append(i > 0 ? "," : "").append(op);
    return "{\"format\":\"rsnet-edge-rsfold\",\"version\":2,\"inner\":\"pte\",\"outputs\":[{\"entries\":[\"forward\"],"
        + "\"size\":" + 400 * size + ",\"sha256\":\"" + repeat('0', 64) + "\",\"ops\":[" + ops + "]}]}";
  }

  @Test
  public void refusesWhatAFewBytesCouldMakeHuge() throws Exception {
    byte[] pay = new byte[4096];
    refuses(amplified("{\"op\":\"copy\",\"src\":0,\"size\":4000}", 4000), pay,
        "bad.pte.rsfold output 0 is corrupt (copies of one program overlap)");
    refuses(amplified("{\"op\":\"scale_f32\",\"src\":0,\"size\":4000,\"scale\":4000,\"channels\":1,\"inner\":1000}", 4000),
        pay, "bad.pte.rsfold is corrupt (it would unpack to 1600000 bytes from a 4096-byte payload, more than 64x)");
    RsfoldFixture fx = new RsfoldFixture(2);
    refuses(fx.header.replaceFirst("\"inner\":6", "\"inner\":5"), fx.payload,
        "bad.pte.rsfold output 0 is truncated or corrupt (op 1 has a bad scale range)");
    byte[] huge = fx.container.clone();
    ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putLong(8, -1L);
    refuses(huge, "bad.pte.rsfold has a corrupt header (claims 18446744073709551615 bytes)");
    ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putLong(8, (1L << 26) + 1);
    refuses(huge, "bad.pte.rsfold has a corrupt header (claims 67108865 bytes)");
    refuses(repeat('[', 200000), new byte[0], "bad.pte.rsfold has a corrupt header");
    refuses(fx.header.replace("\"forward_48\"", "\"../x\""), fx.payload,
        "bad.pte.rsfold output 1: entries must be a list of entry-point names");
    refuses(fx.header.replace("\"forward_48\"", "\"forward\""), fx.payload,
        "bad.pte.rsfold output 1: entry point forward is served twice (also by output 0)");
    refuses(fx.header.replace("[\"forward_48\"]", "null"), fx.payload,
        "bad.pte.rsfold output 1: entries null (every entry point) in a container of several programs");
    refuses(fx.header.replace("\"version\":2", "\"version\":1e400"), fx.payload,
        "bad.pte.rsfold has RSFOLD version inf; this library reads version 1 and 2");
    refuses(fx.header.replace("\"inner\":\"pte\"", "\"inner\":\"p\u00e9\\u200b\\n\""), fx.payload,
        "bad.pte.rsfold: unknown inner format 'p\u00e9\\u200b\\n'");
  }

  private static String repeat(char c, int n) {
    char[] a = new char[n];
    Arrays.fill(a, c);
    return new String(a);
  }
}
