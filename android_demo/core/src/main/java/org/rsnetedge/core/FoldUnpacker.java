package org.rsnetedge.core;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.BufferedOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.io.StringReader;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Unpacks an RSFOLD compact artifact (rsnet_edge/rsfold.py; the file layout is in its docstring)
 * into the BN-folded program the STOCK runtime loads, byte for byte what Python's {@code
 * rsnet_edge.rsfold.unpack_bytes} produces: verbatim copies plus float32 {@code w[e] *
 * s[(e / inner) % channels]} (IEEE-754 single precision, round to nearest; Java's float multiply is
 * exactly that), then the size and sha256 the header records are checked.
 *
 * <p>Header validation and its one-line messages are those of {@code rsfold.read_header}. Unpacking
 * streams through the payload (random access on the file, bounded memory) into a temp file beside
 * the output, which is renamed into place only when the sha256 matches; on any failure the temp
 * file is removed and nothing is written. Pure Java 8 API (runs on Android 26+ and any JVM).
 *
 * <pre>java -cp core.jar:gson.jar org.rsnetedge.core.FoldUnpacker IN.pte.rsfold OUT.pte</pre>
 */
public final class FoldUnpacker {
  public static final String FORMAT = "rsnet-edge-rsfold";
  public static final int VERSION = 1;
  public static final String SUFFIX = ".rsfold";
  public static final List<String> INNER_FORMATS =
      Collections.unmodifiableList(Arrays.asList("pte", "tflite"));
  private static final byte[] MAGIC = "RSFOLD01".getBytes(StandardCharsets.US_ASCII);
  private static final Pattern INT_LITERAL = Pattern.compile("-?\\d+");
  private static final int CHUNK_FLOATS = 1 << 16;

  private FoldUnpacker() {}

  /** One header op: a verbatim copy, or a float32 scale of {@code size / 4} weights. */
  public static final class Op {
    public final boolean scale;
    public final long src;
    public final long size;
    public final long scaleSrc;
    public final int channels;
    public final long inner;

    Op(boolean scale, long src, long size, long scaleSrc, int channels, long inner) {
      this.scale = scale;
      this.src = src;
      this.size = size;
      this.scaleSrc = scaleSrc;
      this.channels = channels;
      this.inner = inner;
    }
  }

  /** A validated header: what the unpacked file is, its size and sha256, and how to make it. */
  public static final class Header {
    /** "pte" or "tflite". */
    public final String inner;
    public final long outputSize;
    public final String outputSha256;
    public final List<Op> ops;
    /** Where the payload starts in the file (16 + header length). */
    public final long payloadOffset;

    Header(String inner, long outputSize, String outputSha256, List<Op> ops, long payloadOffset) {
      this.inner = inner;
      this.outputSize = outputSize;
      this.outputSha256 = outputSha256;
      this.ops = Collections.unmodifiableList(ops);
      this.payloadOffset = payloadOffset;
    }
  }

  /** What {@link #cachedUnpack} did. */
  public static final class Unpacked {
    public final File file;
    public final String sha256;
    public final long size;
    /** True when a cached file with the right sha256 was found and nothing was unpacked. */
    public final boolean reused;

    Unpacked(File file, String sha256, long size, boolean reused) {
      this.file = file;
      this.sha256 = sha256;
      this.size = size;
      this.reused = reused;
    }
  }

  // --------------------------------------------------------------------------- queries
  /** True when the file starts with the RSFOLD magic. */
  public static boolean isRsfold(File f) {
    byte[] head = new byte[MAGIC.length];
    try (InputStream in = new FileInputStream(f)) {
      int n = 0;
      while (n < head.length) {
        int k = in.read(head, n, head.length - n);
        if (k < 0) return false;
        n += k;
      }
      return Arrays.equals(head, MAGIC);
    } catch (IOException e) {
      return false;
    }
  }

  /** Read and validate the header of {@code f} (everything but the output hash). */
  public static Header readHeader(File f) throws IOException {
    if (!f.isFile()) throw new RsfoldException(f.getName() + " is not an RSFOLD artifact (bad magic)");
    try (RandomAccessFile raf = new RandomAccessFile(f, "r")) {
      return readHeader(raf.getChannel(), f.getName());
    }
  }

  /** Validate exactly as rsnet_edge.rsfold.read_header does, with the same messages. */
  static Header readHeader(FileChannel ch, String name) throws IOException {
    long len = ch.size();
    ByteBuffer pre = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    if (len < 16) throw new RsfoldException(name + " is not an RSFOLD artifact (bad magic)");
    readFully(ch, pre, 0);
    byte[] magic = new byte[8];
    pre.get(magic);
    if (!Arrays.equals(magic, MAGIC)) {
      throw new RsfoldException(name + " is not an RSFOLD artifact (bad magic)");
    }
    long hlen = pre.getLong(8); // uint64: negative here means >= 2^63
    if (hlen < 0 || hlen > len - 16) {
      throw new RsfoldException(name + " is truncated (header runs past the end of the file)");
    }
    if (hlen > Integer.MAX_VALUE - 16) {
      throw new RsfoldException(name + " has a corrupt header");
    }
    ByteBuffer hb = ByteBuffer.allocate((int) hlen);
    readFully(ch, hb, 16);
    JsonElement headEl = parseStrict(hb, name);
    if (headEl == null || !headEl.isJsonObject()
        || !FORMAT.equals(stringOrNull(headEl.getAsJsonObject().get("format")))) {
      throw new RsfoldException(name + " is not an rsnet-edge RSFOLD artifact");
    }
    JsonObject head = headEl.getAsJsonObject();
    JsonElement ver = head.get("version");
    if (!(isNumber(ver) && ver.getAsDouble() == VERSION)) {
      throw new RsfoldException(name + " has RSFOLD version " + Json.pyRepr(ver)
          + "; this library reads version " + VERSION);
    }
    String inner = stringOrNull(head.get("inner"));
    if (inner == null || !INNER_FORMATS.contains(inner)) {
      throw new RsfoldException(name + ": unknown inner format " + Json.pyRepr(head.get("inner")));
    }
    JsonElement outEl = head.get("output");
    if (!(outEl != null && outEl.isJsonObject() && uint(outEl.getAsJsonObject().get("size")) != null
        && stringOrNull(outEl.getAsJsonObject().get("sha256")) != null)) {
      throw new RsfoldException(name + ": header lacks output size/sha256");
    }
    BigInteger outSize = uint(outEl.getAsJsonObject().get("size"));
    String outSha = outEl.getAsJsonObject().get("sha256").getAsString();
    JsonElement opsEl = head.get("ops");
    if (opsEl == null || !opsEl.isJsonArray()) throw new RsfoldException(name + ": header lacks ops");
    JsonArray opsArr = opsEl.getAsJsonArray();
    long base = 16 + hlen;
    BigInteger nPayload = BigInteger.valueOf(len - base);
    BigInteger total = BigInteger.ZERO;
    List<Op> ops = new ArrayList<Op>(opsArr.size());
    for (int k = 0; k < opsArr.size(); k++) {
      JsonElement opEl = opsArr.get(k);
      JsonObject op = opEl.isJsonObject() ? opEl.getAsJsonObject() : null;
      JsonElement kindEl = op != null ? op.get("op") : null;
      String kind = stringOrNull(kindEl);
      if (!("copy".equals(kind) || "scale_f32".equals(kind))) {
        throw new RsfoldException(name + ": op " + k + " is unknown (" + Json.pyRepr(kindEl) + ")");
      }
      BigInteger src = uint(op.get("src"));
      BigInteger size = uint(op.get("size"));
      if (src == null || size == null || src.add(size).compareTo(nPayload) > 0) {
        throw new RsfoldException(
            name + " is truncated or corrupt (op " + k + " reads past the payload)");
      }
      if ("scale_f32".equals(kind)) {
        BigInteger c = uint(op.get("channels"));
        BigInteger in = uint(op.get("inner"));
        BigInteger so = uint(op.get("scale"));
        boolean ok = c != null && c.signum() > 0 && in != null && in.signum() > 0 && so != null
            && so.add(c.shiftLeft(2)).compareTo(nPayload) <= 0
            && size.mod(BigInteger.valueOf(4)).signum() == 0;
        if (!ok) throw new RsfoldException(name + " is truncated or corrupt (op " + k + " has a bad scale range)");
        // in the payload, so c < 2^31 / 4 and inner fits a long once clamped (it only divides e)
        long innerL = in.bitLength() > 62 ? Long.MAX_VALUE : in.longValue();
        ops.add(new Op(true, src.longValue(), size.longValue(), so.longValue(), c.intValue(), innerL));
      } else {
        ops.add(new Op(false, src.longValue(), size.longValue(), 0, 0, 1));
      }
      total = total.add(size);
    }
    if (!total.equals(outSize)) {
      throw new RsfoldException(name + " is corrupt (ops make " + total + " bytes, header says "
          + outSize + ")");
    }
    return new Header(inner, outSize.longValue(), outSha, ops, base);
  }

  // --------------------------------------------------------------------------- unpacking
  /**
   * Unpack {@code in} into {@code out} atomically (temp file beside {@code out}, renamed into place
   * after the size and sha256 check; removed on any failure). Returns the output's sha256.
   */
  public static String unpack(File in, File out) throws IOException {
    checkOutput(in, out);
    if (!in.isFile()) throw new RsfoldException(in.getName() + " is not an RSFOLD artifact (bad magic)");
    try (RandomAccessFile raf = new RandomAccessFile(in, "r")) {
      FileChannel ch = raf.getChannel();
      Header h = readHeader(ch, in.getName());
      return unpackTo(ch, h, in.getName(), out);
    }
  }

  /**
   * Unpack {@code in} once into {@code dir} as {@code <output sha256>.<inner>} and return it; a file
   * already there is reused only when its size and sha256 are the ones the header records.
   */
  public static Unpacked cachedUnpack(File in, File dir) throws IOException {
    Header h = readHeader(in);
    File target = new File(dir, h.outputSha256 + "." + h.inner);
    if (target.isFile() && target.length() == h.outputSize
        && h.outputSha256.equalsIgnoreCase(sha256(target))) {
      return new Unpacked(target, h.outputSha256, h.outputSize, true);
    }
    if (!dir.isDirectory() && !dir.mkdirs()) throw new IOException("cannot create " + dir);
    String sha = unpack(in, target);
    return new Unpacked(target, sha, h.outputSize, false);
  }

  private static String unpackTo(FileChannel ch, Header h, String name, File out) throws IOException {
    File dir = out.getAbsoluteFile().getParentFile();
    File tmp = File.createTempFile("." + out.getName() + ".tmp-", "", dir);
    tmp.deleteOnExit(); // also gone after Ctrl-C (the JVM runs its exit hooks on SIGINT)
    boolean done = false;
    try {
      MessageDigest md = sha256Digest();
      FileOutputStream fos = new FileOutputStream(tmp);
      try {
        OutputStream os = new BufferedOutputStream(fos, 1 << 16);
        long written = 0;
        for (Op op : h.ops) {
          written += op.scale ? scaleOp(ch, h.payloadOffset, op, os, md) : copyOp(ch, h.payloadOffset, op, os, md);
        }
        os.flush();
        fos.getFD().sync();
        if (written != h.outputSize) throw new RsfoldException(name + " is corrupt (short output)");
      } finally {
        fos.close();
      }
      String digest = hex(md.digest());
      if (!digest.equalsIgnoreCase(h.outputSha256)) {
        throw new RsfoldException(name + " is corrupt: it unpacks to sha256 " + digest.substring(0, 12)
            + "..., header says " + prefix(h.outputSha256, 12) + "...");
      }
      Files.move(tmp.toPath(), out.toPath(), StandardCopyOption.ATOMIC_MOVE);
      done = true;
      return digest;
    } finally {
      if (!done && tmp.exists() && !tmp.delete()) tmp.deleteOnExit();
    }
  }

  private static long copyOp(FileChannel ch, long base, Op op, OutputStream os, MessageDigest md)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocate((int) Math.min(op.size, 1 << 20));
    long pos = base + op.src;
    long left = op.size;
    while (left > 0) {
      buf.clear();
      buf.limit((int) Math.min(left, buf.capacity()));
      readFully(ch, buf, pos);
      os.write(buf.array(), 0, buf.limit());
      md.update(buf.array(), 0, buf.limit());
      pos += buf.limit();
      left -= buf.limit();
    }
    return op.size;
  }

  private static long scaleOp(FileChannel ch, long base, Op op, OutputStream os, MessageDigest md)
      throws IOException {
    ByteBuffer sb = ByteBuffer.allocate(4 * op.channels).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, sb, base + op.scaleSrc);
    float[] s = new float[op.channels];
    for (int c = 0; c < s.length; c++) s[c] = sb.getFloat(4 * c);
    long n = op.size / 4;
    ByteBuffer in = ByteBuffer.allocate((int) (4 * Math.min(n, CHUNK_FLOATS))).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer out = ByteBuffer.allocate(in.capacity()).order(ByteOrder.LITTLE_ENDIAN);
    long pos = base + op.src;
    long e = 0;
    while (e < n) {
      int k = (int) Math.min(n - e, CHUNK_FLOATS);
      in.clear();
      in.limit(4 * k);
      readFully(ch, in, pos);
      out.clear();
      for (int i = 0; i < k; i++, e++) {
        float w = in.getFloat(4 * i);
        out.putFloat(4 * i, w * s[(int) ((e / op.inner) % op.channels)]);
      }
      os.write(out.array(), 0, 4 * k);
      md.update(out.array(), 0, 4 * k);
      pos += 4L * k;
    }
    return op.size;
  }

  // --------------------------------------------------------------------------- helpers
  /** Refuse an output that is the input, a directory, or in a missing folder (before any work). */
  static void checkOutput(File in, File out) throws IOException {
    if (out.exists() && in.exists() && out.getCanonicalFile().equals(in.getCanonicalFile())) {
      throw new RsfoldException(out + " is the input artifact");
    }
    if (out.isDirectory()) throw new RsfoldException(out + " is a directory");
    File dir = out.getAbsoluteFile().getParentFile();
    if (dir == null || !dir.isDirectory()) {
      throw new RsfoldException("the folder of " + out + " does not exist");
    }
  }

  /** Lower-case hex sha256 of a file. */
  public static String sha256(File f) throws IOException {
    MessageDigest md = sha256Digest();
    try (InputStream in = new FileInputStream(f)) {
      byte[] buf = new byte[1 << 16];
      int n;
      while ((n = in.read(buf)) > 0) md.update(buf, 0, n);
    }
    return hex(md.digest());
  }

  private static MessageDigest sha256Digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("no SHA-256 in this JVM", e);
    }
  }

  private static String hex(byte[] b) {
    StringBuilder sb = new StringBuilder(2 * b.length);
    for (byte x : b) sb.append(String.format(Locale.US, "%02x", x & 0xFF));
    return sb.toString();
  }

  private static String prefix(String s, int n) {
    return s.length() <= n ? s : s.substring(0, n);
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      int k = ch.read(buf, pos);
      if (k < 0) throw new RsfoldException("unexpected end of file at byte " + pos);
      pos += k;
    }
    buf.flip();
  }

  /** Strict UTF-8 + strict JSON (no trailing data), as Python's json.loads(bytes.decode()). */
  private static JsonElement parseStrict(ByteBuffer hb, String name) throws RsfoldException {
    String text;
    try {
      CharBuffer cb = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(hb);
      text = cb.toString();
    } catch (CharacterCodingException e) {
      throw new RsfoldException(name + " has a corrupt header");
    }
    try {
      JsonReader r = new JsonReader(new StringReader(text));
      r.setLenient(false);
      JsonElement e = new Gson().getAdapter(JsonElement.class).read(r);
      if (r.peek() != JsonToken.END_DOCUMENT) throw new IOException("trailing data");
      return e;
    } catch (IOException | RuntimeException e) {
      throw new RsfoldException(name + " has a corrupt header");
    }
  }

  /** Python's {@code isinstance(x, int) and not isinstance(x, bool) and x >= 0}, else null. */
  private static BigInteger uint(JsonElement e) {
    if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) return null;
    String lit = e.getAsJsonPrimitive().getAsString();
    if (!INT_LITERAL.matcher(lit).matches()) return null;
    BigInteger v = new BigInteger(lit);
    return v.signum() >= 0 ? v : null;
  }

  private static boolean isNumber(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber();
  }

  private static String stringOrNull(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isString() ? e.getAsString() : null;
  }

  // ------------------------------------------------------------------------------ CLI
  /** {@code FoldUnpacker IN OUT}: unpack to a file, print {@code <sha256>  OUT}; errors: one line, exit 2. */
  public static void main(String[] args) {
    if (args.length != 2) {
      System.err.println("usage: FoldUnpacker ARTIFACT.rsfold OUT");
      System.exit(2);
    }
    File in = new File(args[0]);
    File out = new File(args[1]);
    try {
      String sha = unpack(in, out);
      System.out.println(sha + "  " + out);
    } catch (IOException | RuntimeException e) {
      System.err.println("error: " + e.getMessage());
      System.exit(2);
    }
  }
}
