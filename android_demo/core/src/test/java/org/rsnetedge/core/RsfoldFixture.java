package org.rsnetedge.core;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A version-2 RSFOLD container built here by hand (layout of rsnet_edge/rsfold.py's docstring): one
 * program per resolution, each folding the SAME weight W (stored once) with its own scales, plus a
 * constant block all programs share (stored once) and bytes of their own. The expected programs
 * are computed independently: the fold as {@code (float) ((double) w * s)} (exact product, one
 * rounding), which equals IEEE float multiplication. tests/test_android_core.py checks the unpacker
 * against containers written by Python's rsfold.pack.
 */
final class RsfoldFixture {
  final byte[] container;
  final List<byte[]> programs = new ArrayList<byte[]>();
  final List<String[]> entries = new ArrayList<String[]>();
  /** Header text, for tests that edit it. */
  final String header;
  final byte[] payload;

  /** {@code n} programs serving forward_64 (+ forward), forward_48, forward_32, ... */
  RsfoldFixture(int n) throws Exception {
    Random rnd = new Random(11);
    float[] w = new float[4 * 6]; // [C=4, inner=6]
    for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian();
    w[3] = -0f;
    byte[] shared = bytes(rnd, 300);
    ByteArrayOutputStream pay = new ByteArrayOutputStream();
    int oW = pay.size();
    pay.write(le(w));
    int oShared = pay.size();
    pay.write(shared);
    StringBuilder outs = new StringBuilder();
    for (int k = 0; k < n; k++) {
      float[] s = new float[4];
      for (int c = 0; c < 4; c++) s[c] = (float) (0.5 + rnd.nextDouble() * 2) * (c == 2 ? -1 : 1);
      byte[] own = bytes(rnd, 13 + k);
      byte[] tail = bytes(rnd, 5 + 2 * k);
      while (pay.size() % 4 != 0) pay.write(0);
      int oS = pay.size();
      pay.write(le(s));
      int oOwn = pay.size();
      pay.write(own);
      int oTail = pay.size();
      pay.write(tail);
      ByteArrayOutputStream prog = new ByteArrayOutputStream();
      prog.write(own);
      prog.write(le(fold(w, s, 6)));
      prog.write(shared);
      prog.write(tail);
      byte[] p = prog.toByteArray();
      programs.add(p);
      String[] e = k == 0 ? new String[] {"forward_64", "forward"} : new String[] {"forward_" + (64 - 16 * k)};
      entries.add(e);
      outs.append(k > 0 ? "," : "").append("{\"entries\":[\"").append(String.join("\",\"", e))
          .append("\"],\"size\":").append(p.length).append(",\"sha256\":\"").append(sha(p))
          .append("\",\"ops\":[{\"op\":\"copy\",\"src\":").append(oOwn).append(",\"size\":").append(own.length)
          .append("},{\"op\":\"scale_f32\",\"src\":").append(oW).append(",\"size\":").append(4 * w.length)
          .append(",\"scale\":").append(oS).append(",\"channels\":4,\"inner\":6}")
          .append(",{\"op\":\"copy\",\"src\":").append(oShared).append(",\"size\":").append(shared.length)
          .append("},{\"op\":\"copy\",\"src\":").append(oTail).append(",\"size\":").append(tail.length)
          .append("}]}");
    }
    header = "{\"format\":\"rsnet-edge-rsfold\",\"version\":2,\"inner\":\"pte\",\"outputs\":[" + outs + "]}";
    payload = pay.toByteArray();
    container = container(header, payload);
  }

  static byte[] container(String header, byte[] payload) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(16 + h.length + payload.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put("RSFOLD01".getBytes(StandardCharsets.US_ASCII)).putLong(h.length).put(h).put(payload);
    return b.array();
  }

  static byte[] le(float[] v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float x : v) b.putFloat(x);
    return b.array();
  }

  /** Reference fold: exact product in double, rounded once to float. */
  static float[] fold(float[] w, float[] s, int inner) {
    float[] out = new float[w.length];
    for (int e = 0; e < w.length; e++) out[e] = (float) ((double) w[e] * s[(e / inner) % s.length]);
    return out;
  }

  static String sha(byte[] b) throws Exception {
    StringBuilder sb = new StringBuilder();
    for (byte x : MessageDigest.getInstance("SHA-256").digest(b)) sb.append(String.format("%02x", x));
    return sb.toString();
  }

  private static byte[] bytes(Random rnd, int n) {
    byte[] b = new byte[n];
    rnd.nextBytes(b);
    return b;
  }
}
