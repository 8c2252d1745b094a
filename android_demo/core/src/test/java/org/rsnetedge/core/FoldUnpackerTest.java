package org.rsnetedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.util.Random;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * A small RSFOLD container built here by hand (layout of rsnet_edge/rsfold.py's docstring), with an
 * expected program computed independently: the fold as {@code (float) ((double) w * s)} (exact
 * product, one rounding), which equals IEEE float multiplication. tests/test_android_core.py checks
 * the same class against containers written by Python's rsfold.pack.
 */
public class FoldUnpackerTest {
  @Rule public TemporaryFolder tmp = new TemporaryFolder();

  /** A container + the program it must unpack to. */
  private static final class Built {
    byte[] container;
    byte[] program;
  }

  private static byte[] le(float[] v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float x : v) b.putFloat(x);
    return b.array();
  }

  private static String sha(byte[] b) throws Exception {
    StringBuilder sb = new StringBuilder();
    for (byte x : MessageDigest.getInstance("SHA-256").digest(b)) sb.append(String.format("%02x", x));
    return sb.toString();
  }

  private static byte[] container(String header, byte[] payload) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(16 + h.length + payload.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put("RSFOLD01".getBytes(StandardCharsets.US_ASCII)).putLong(h.length).put(h).put(payload);
    return b.array();
  }

  /**
   * Program = 37 random bytes | hole A (W1 [4 ch x 3 inner], scales s1) | 5 bytes | hole B (W1 again,
   * other scales, stored once) | hole C (W2, 3 channels, inner 1) | 11 bytes.
   */
  private static Built build(String opsOverride, String outputOverride) throws Exception {
    Random rnd = new Random(7);
    float[] w1 = new float[12];
    float[] w2 = new float[9];
    for (int i = 0; i < w1.length; i++) w1[i] = (float) rnd.nextGaussian();
    for (int i = 0; i < w2.length; i++) w2[i] = (float) rnd.nextGaussian() * 1e-3f;
    w1[5] = 0f;
    w1[6] = -0f;
    float[] s1 = {1.5f, -0.25f, 3.1f, 0.7f};
    float[] s2 = {0.9f, 2.2f, -1.1f, 1e-20f};
    float[] s3 = {0.3f, 7f, 0.11f};
    byte[] pre = new byte[37];
    byte[] mid = new byte[5];
    byte[] post = new byte[11];
    rnd.nextBytes(pre);
    rnd.nextBytes(mid);
    rnd.nextBytes(post);

    ByteArrayOutputStream prog = new ByteArrayOutputStream();
    prog.write(pre);
    prog.write(le(fold(w1, s1, 3)));
    prog.write(mid);
    prog.write(le(fold(w1, s2, 3)));
    prog.write(le(fold(w2, s3, 1)));
    prog.write(post);

    ByteArrayOutputStream pay = new ByteArrayOutputStream();
    int oPre = 0;
    pay.write(pre);
    pay.write(new byte[3]); // align to 4 (40)
    int oW1 = pay.size();
    pay.write(le(w1));
    int oS1 = pay.size();
    pay.write(le(s1));
    int oMid = pay.size();
    pay.write(mid);
    pay.write(new byte[3]);
    int oS2 = pay.size();
    pay.write(le(s2));
    int oW2 = pay.size();
    pay.write(le(w2));
    int oS3 = pay.size();
    pay.write(le(s3));
    int oPost = pay.size();
    pay.write(post);

    Built b = new Built();
    b.program = prog.toByteArray();
    String ops = opsOverride != null ? opsOverride
        : "[{\"op\":\"copy\",\"src\":" + oPre + ",\"size\":37},"
            + "{\"op\":\"scale_f32\",\"src\":" + oW1 + ",\"size\":48,\"scale\":" + oS1 + ",\"channels\":4,\"inner\":3},"
            + "{\"op\":\"copy\",\"src\":" + oMid + ",\"size\":5},"
            + "{\"op\":\"scale_f32\",\"src\":" + oW1 + ",\"size\":48,\"scale\":" + oS2 + ",\"channels\":4,\"inner\":3},"
            + "{\"op\":\"scale_f32\",\"src\":" + oW2 + ",\"size\":36,\"scale\":" + oS3 + ",\"channels\":3,\"inner\":1},"
            + "{\"op\":\"copy\",\"src\":" + oPost + ",\"size\":11}]";
    String output = outputOverride != null ? outputOverride
        : "{\"size\":" + b.program.length + ",\"sha256\":\"" + sha(b.program) + "\"}";
    String header = "{\"format\":\"rsnet-edge-rsfold\",\"version\":1,\"inner\":\"pte\",\"output\":"
        + output + ",\"ops\":" + ops + "}";
    b.container = container(header, pay.toByteArray());
    return b;
  }

  /** Reference fold: exact product in double, rounded once to float. */
  private static float[] fold(float[] w, float[] s, int inner) {
    float[] out = new float[w.length];
    for (int e = 0; e < w.length; e++) out[e] = (float) ((double) w[e] * s[(e / inner) % s.length]);
    return out;
  }

  private File write(String name, byte[] data) throws IOException {
    File f = new File(tmp.getRoot(), name);
    Files.write(f.toPath(), data);
    return f;
  }

  @Test
  public void unpacksByteForByte() throws Exception {
    Built b = build(null, null);
    File in = write("m.pte.rsfold", b.container);
    assertTrue(FoldUnpacker.isRsfold(in));
    File out = new File(tmp.getRoot(), "m.pte");
    String sha = FoldUnpacker.unpack(in, out);
    assertArrayEquals(b.program, Files.readAllBytes(out.toPath()));
    assertEquals(sha(b.program), sha);
    assertEquals(sha, FoldUnpacker.sha256(out));
    assertEquals(1, tmp.getRoot().list().length - 1); // no temp file left beside it
  }

  @Test
  public void cachedUnpackIsNamedBySha256AndReused() throws Exception {
    Built b = build(null, null);
    File in = write("m.pte.rsfold", b.container);
    File dir = new File(tmp.getRoot(), "cache");
    FoldUnpacker.Unpacked first = FoldUnpacker.cachedUnpack(in, dir);
    assertFalse(first.reused);
    assertEquals(sha(b.program) + ".pte", first.file.getName());
    FoldUnpacker.Unpacked again = FoldUnpacker.cachedUnpack(in, dir);
    assertTrue(again.reused);
    // a damaged cached copy is not reused: it is unpacked again
    byte[] bad = Files.readAllBytes(first.file.toPath());
    bad[40] ^= 1;
    Files.write(first.file.toPath(), bad);
    FoldUnpacker.Unpacked fixed = FoldUnpacker.cachedUnpack(in, dir);
    assertFalse(fixed.reused);
    assertArrayEquals(b.program, Files.readAllBytes(fixed.file.toPath()));
  }

  private void refuses(byte[] container, String msg) throws Exception {
    File in = write("bad.pte.rsfold", container);
    File out = new File(tmp.getRoot(), "bad.pte");
    try {
      FoldUnpacker.unpack(in, out);
      fail("unpacked a container that should fail with: " + msg);
    } catch (RsfoldException e) {
      assertEquals(msg, e.getMessage());
    }
    assertFalse(out.exists());
    assertEquals(1, tmp.getRoot().list().length); // only the input: no temp file left
    assertTrue(in.delete());
  }

  @Test
  public void refusesBadContainersWithOneLineAndWritesNothing() throws Exception {
    Built good = build(null, null);
    byte[] magic = good.container.clone();
    magic[0] = 'X';
    refuses(magic, "bad.pte.rsfold is not an RSFOLD artifact (bad magic)");
    refuses(java.util.Arrays.copyOf(good.container, 40),
        "bad.pte.rsfold is truncated (header runs past the end of the file)");
    refuses(java.util.Arrays.copyOf(good.container, good.container.length - 3),
        "bad.pte.rsfold is truncated or corrupt (op 5 reads past the payload)");
    refuses(build("[{\"op\":\"xor\",\"src\":0,\"size\":1}]", null).container,
        "bad.pte.rsfold: op 0 is unknown ('xor')");
    refuses(build("[{\"op\":\"scale_f32\",\"src\":0,\"size\":6,\"scale\":0,\"channels\":1,\"inner\":1}]", null)
        .container, "bad.pte.rsfold is truncated or corrupt (op 0 has a bad scale range)");
    refuses(build(null, "{\"size\":1,\"sha256\":\"" + repeat('0', 64) + "\"}").container,
        "bad.pte.rsfold is corrupt (ops make 185 bytes, header says 1)");
    refuses(build(null, "{\"size\":185,\"sha256\":\"00\"}").container,
        "bad.pte.rsfold: header lacks output size/sha256");
    refuses(build(null, "{\"size\":185,\"sha256\":\"" + repeat('0', 64) + "\"}").container,
        "bad.pte.rsfold is corrupt: it unpacks to sha256 " + sha(good.program).substring(0, 12)
            + "..., header says 000000000000...");
    refuses(container("{\"format\":\"rsnet-edge-rsfold\",", new byte[0]),
        "bad.pte.rsfold has a corrupt header");
    refuses(container("{\"format\":\"rsnet-edge-rsfold\",\"version\":3}", new byte[0]),
        "bad.pte.rsfold has RSFOLD version 3; this library reads version 1 and 2");
    refuses(container("{\"format\":\"rsnet-edge-rsfold\",\"version\":[1.5e16,\"it's\",null,true,{\"k\":NaN}]}",
        new byte[0]), "bad.pte.rsfold has RSFOLD version [1.5e+16, \"it's\", None, True, {'k': nan}]; "
        + "this library reads version 1 and 2");
  }

  @Test
  public void refusesAnOutputThatIsTheInputBeforeWorking() throws Exception {
    File in = write("m.pte.rsfold", build(null, null).container);
    try {
      FoldUnpacker.unpack(in, in);
      fail("overwrote its input");
    } catch (RsfoldException e) {
      assertTrue(e.getMessage(), e.getMessage().contains("is the input artifact"));
    }
    assertTrue(FoldUnpacker.isRsfold(in));
  }

  private static String repeat(char c, int n) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < n; i++) sb.append(c);
    return sb.toString();
  }
}
