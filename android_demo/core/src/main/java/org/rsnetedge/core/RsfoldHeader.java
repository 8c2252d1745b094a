package org.rsnetedge.core;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The validated header of an RSFOLD container (versions 1 and 2), checked exactly as {@code
 * rsnet_edge.rsfold.Container} / {@code parse_header} check it, in the same order and with the same
 * one-line messages; the file layout is in the docstring of rsnet_edge/rsfold.py. Bounds (so that a
 * small file cannot make the unpacker allocate or write gigabytes): a header of at most {@link
 * #MAX_HEADER_BYTES}, every range inside the payload, a {@code scale_f32} op of whole {@code channels
 * x inner} weights, copy ops of one program that never overlap, and all programs together at most
 * {@link #MAX_AMPLIFICATION} x the payload + 1 MiB.
 */
public final class RsfoldHeader {
  public static final String FORMAT = "rsnet-edge-rsfold";
  /** The version Python writes today; {@link #READS} are read. */
  public static final int VERSION = 2;
  public static final List<Integer> READS = Collections.unmodifiableList(Arrays.asList(1, 2));
  public static final List<String> INNER_FORMATS =
      Collections.unmodifiableList(Arrays.asList("pte", "tflite"));
  public static final long MAX_HEADER_BYTES = 1L << 26;
  public static final int MAX_AMPLIFICATION = 64;
  static final long SLACK = 1L << 20;
  static final byte[] MAGIC = "RSFOLD01".getBytes(StandardCharsets.US_ASCII);
  private static final Pattern ENTRY = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
  private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");

  /** One op: a verbatim copy of payload bytes, or {@code size / 4} float32 weights times scales. */
  public static final class Op {
    public final boolean scale;
    public final long src;
    public final long size;
    public final long scaleSrc;
    public final long channels;
    public final long inner;

    Op(boolean scale, long src, long size, long scaleSrc, long channels, long inner) {
      this.scale = scale;
      this.src = src;
      this.size = size;
      this.scaleSrc = scaleSrc;
      this.channels = channels;
      this.inner = inner;
    }
  }

  /** One program of the container. */
  public static final class Output {
    public final int index;
    /** The entry points it serves; null: every entry (a one-program container). */
    public final List<String> entries;
    public final long size;
    public final String sha256;
    public final List<Op> ops;

    Output(int index, List<String> entries, long size, String sha256, List<Op> ops) {
      this.index = index;
      this.entries = entries == null ? null : Collections.unmodifiableList(entries);
      this.size = size;
      this.sha256 = sha256;
      this.ops = Collections.unmodifiableList(ops);
    }

    /** Its file name when a container's programs are unpacked into a folder: {@code <first entry>.<inner>}. */
    public String fileName(String inner) {
      return (entries == null ? "program" : entries.get(0)) + "." + inner;
    }
  }

  /** The artifact's file name, as messages quote it. */
  public final String name;
  public final int version;
  /** "pte" or "tflite": what each program is. */
  public final String inner;
  public final List<Output> outputs;
  /** Where the payload starts in the file (16 + header length), and its length. */
  public final long payloadOffset;
  public final long payloadSize;

  private RsfoldHeader(String name, int version, String inner, List<Output> outputs, long base, long n) {
    this.name = name;
    this.version = version;
    this.inner = inner;
    this.outputs = Collections.unmodifiableList(outputs);
    this.payloadOffset = base;
    this.payloadSize = n;
  }

  // ------------------------------------------------------------------------------ queries
  /** The program serving {@code entry} (a program with {@code entries} null serves every entry). */
  public Output outputFor(String entry) throws RsfoldException {
    for (Output o : outputs) if (o.entries == null || o.entries.contains(entry)) return o;
    throw new RsfoldException(name + " has no program for entry point " + entry);
  }

  /** Program {@code index}. */
  public Output output(int index) throws RsfoldException {
    if (index < 0 || index >= outputs.size()) throw new RsfoldException(name + " has no program " + index);
    return outputs.get(index);
  }

  /** Every entry point the programs name; null when one program serves every entry. */
  public Set<String> entryNames() {
    Set<String> out = new LinkedHashSet<String>();
    for (Output o : outputs) {
      if (o.entries == null) return null;
      out.addAll(o.entries);
    }
    return out;
  }

  // ------------------------------------------------------------------------------ reading
  /** {@code Container.open}: the file's header, validated (the payload is not read). */
  public static RsfoldHeader read(File f) throws IOException {
    try (RandomAccessFile raf = open(f)) {
      return read(raf.getChannel(), f.getName());
    }
  }

  /** The file opened for reading, or Python's one line for a missing, folder or unreadable path. */
  static RandomAccessFile open(File f) throws RsfoldException {
    if (!f.exists()) throw new RsfoldException(f + " does not exist");
    if (f.isDirectory()) throw new RsfoldException(f + " is a folder, not an RSFOLD artifact");
    try {
      return new RandomAccessFile(f, "r");
    } catch (IOException e) {
      throw new RsfoldException("cannot read " + f + ": " + e.getMessage());
    }
  }

  /** The header of an open container, checked in Python's order with Python's messages. */
  public static RsfoldHeader read(FileChannel ch, String name) throws IOException {
    long len = ch.size();
    ByteBuffer pre = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    if (len < 16) throw new RsfoldException(name + " is not an RSFOLD artifact (bad magic)");
    FoldUnpacker.readFully(ch, pre, 0);
    byte[] magic = new byte[8];
    pre.get(magic);
    if (!Arrays.equals(magic, MAGIC)) throw new RsfoldException(name + " is not an RSFOLD artifact (bad magic)");
    long hlen = pre.getLong(8); // uint64: compared unsigned
    if (Long.compareUnsigned(hlen, MAX_HEADER_BYTES) > 0) {
      throw new RsfoldException(name + " has a corrupt header (claims " + Long.toUnsignedString(hlen) + " bytes)");
    }
    if (16 + hlen > len) throw new RsfoldException(name + " is truncated (header runs past the end of the file)");
    ByteBuffer hb = ByteBuffer.allocate((int) hlen);
    FoldUnpacker.readFully(ch, hb, 16);
    return parse(hb, len - 16 - hlen, name, 16 + hlen);
  }

  /** {@code parse_header}: every bound of the module docstring, Python's messages. */
  @SuppressWarnings("unchecked")
  static RsfoldHeader parse(ByteBuffer raw, long nPayload, String name, long base) throws RsfoldException {
    Object headObj;
    try {
      String text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT).decode(raw).toString();
      if (Json.shapeError(text, name, MAX_HEADER_BYTES) != null) {   // rsnet_edge.jsonio's rule
        throw new RsfoldException(name + " has a corrupt header");
      }
      headObj = PyJson.parse(text);
    } catch (CharacterCodingException | PyJson.SyntaxError e) {
      throw new RsfoldException(name + " has a corrupt header");
    }
    if (!(headObj instanceof Map) || !FORMAT.equals(get(headObj, "format"))) {
      throw new RsfoldException(name + " is not an rsnet-edge RSFOLD artifact");
    }
    Object ver = get(headObj, "version");
    int version = versionOf(ver);
    if (version < 0) {
      throw new RsfoldException(name + " has RSFOLD version " + PyJson.repr(ver)
          + "; this library reads version 1 and 2");
    }
    Object inner = get(headObj, "inner");
    if (!INNER_FORMATS.contains(inner)) {
      throw new RsfoldException(name + ": unknown inner format " + PyJson.repr(inner));
    }
    List<Object> outs;
    if (version == 1) {
      Object out = get(headObj, "output");
      if (!(out instanceof Map)) throw new RsfoldException(name + ": header lacks output size/sha256");
      Map<String, Object> o = new HashMap<String, Object>();
      o.put("size", get(out, "size"));
      o.put("sha256", get(out, "sha256"));
      o.put("ops", get(headObj, "ops"));
      outs = Collections.<Object>singletonList(o);
    } else {
      Object os = get(headObj, "outputs");
      boolean ok = os instanceof List && !((List<Object>) os).isEmpty();
      if (ok) for (Object o : (List<Object>) os) ok &= o instanceof Map;
      if (!ok) throw new RsfoldException(name + ": header lacks outputs");
      outs = (List<Object>) os;
    }
    BigInteger payload = BigInteger.valueOf(nPayload);
    BigInteger total = BigInteger.ZERO;
    Map<String, Integer> served = new HashMap<String, Integer>();
    List<Output> outputs = new ArrayList<Output>(outs.size());
    for (int i = 0; i < outs.size(); i++) {
      Object o = outs.get(i);
      String where = version == 1 ? name : name + " output " + i;
      List<String> entries = entries(get(o, "entries"));
      if (entries == null && get(o, "entries") != PyJson.NULL) {
        throw new RsfoldException(where + ": entries must be a list of entry-point names");
      }
      if (entries == null && outs.size() > 1) {
        throw new RsfoldException(where + ": entries null (every entry point) in a container of several programs");
      }
      if (entries != null) {
        for (String e : entries) {
          Integer j = served.get(e);
          if (j != null) throw new RsfoldException(where + ": entry point " + e + " is served twice (also by output " + j + ")");
          served.put(e, i);
        }
      }
      BigInteger size = uint(get(o, "size"));
      Object sha = get(o, "sha256");
      if (size == null || !(sha instanceof String) || !SHA256.matcher((String) sha).matches()) {
        throw new RsfoldException(where + ": header lacks output size/sha256");
      }
      Object opsObj = get(o, "ops");
      if (!(opsObj instanceof List)) throw new RsfoldException(where + ": header lacks ops");
      List<Object> opList = (List<Object>) opsObj;
      BigInteger made = BigInteger.ZERO;
      List<long[]> copies = new ArrayList<long[]>();
      List<Op> ops = new ArrayList<Op>(opList.size());
      for (int k = 0; k < opList.size(); k++) {
        Object op = opList.get(k);
        Object kind = op instanceof Map ? get(op, "op") : PyJson.NULL;
        if (!"copy".equals(kind) && !"scale_f32".equals(kind)) {
          throw new RsfoldException(where + ": op " + k + " is unknown (" + PyJson.repr(kind) + ")");
        }
        BigInteger src = uint(get(op, "src"));
        BigInteger n = uint(get(op, "size"));
        if (src == null || n == null || src.add(n).compareTo(payload) > 0) {
          throw new RsfoldException(where + " is truncated or corrupt (op " + k + " reads past the payload)");
        }
        if ("copy".equals(kind)) {
          copies.add(new long[] {src.longValue(), src.longValue() + n.longValue()});
          ops.add(new Op(false, src.longValue(), n.longValue(), 0, 0, 1));
        } else {
          BigInteger c = uint(get(op, "channels"));
          BigInteger in = uint(get(op, "inner"));
          BigInteger so = uint(get(op, "scale"));
          boolean ok = c != null && c.signum() > 0 && in != null && in.signum() > 0 && so != null
              && so.add(c.shiftLeft(2)).compareTo(payload) <= 0
              && n.mod(c.shiftLeft(2).multiply(in)).signum() == 0;
          if (!ok) throw new RsfoldException(where + " is truncated or corrupt (op " + k + " has a bad scale range)");
          // c <= payload / 4; inner only matters when size > 0, and then 4 * c * inner <= size
          long innerL = in.bitLength() > 62 ? Long.MAX_VALUE : in.longValue();
          ops.add(new Op(true, src.longValue(), n.longValue(), so.longValue(), c.longValue(), innerL));
        }
        made = made.add(n);
      }
      if (!made.equals(size)) {
        throw new RsfoldException(where + " is corrupt (ops make " + made + " bytes, header says " + size + ")");
      }
      Collections.sort(copies, (a, b) -> a[0] != b[0] ? Long.compare(a[0], b[0]) : Long.compare(a[1], b[1]));
      for (int k = 1; k < copies.size(); k++) {
        if (copies.get(k)[0] < copies.get(k - 1)[1]) {
          throw new RsfoldException(where + " is corrupt (copies of one program overlap)");
        }
      }
      total = total.add(made);
      outputs.add(new Output(i, entries, size.longValue(), (String) sha, ops));
    }
    BigInteger limit = payload.multiply(BigInteger.valueOf(MAX_AMPLIFICATION)).add(BigInteger.valueOf(SLACK));
    if (total.compareTo(limit) > 0) {
      throw new RsfoldException(name + " is corrupt (it would unpack to " + total + " bytes from a " + nPayload
          + "-byte payload, more than " + MAX_AMPLIFICATION + "x)");
    }
    return new RsfoldHeader(name, version, (String) inner, outputs, base, nPayload);
  }

  // ------------------------------------------------------------------------------ helpers
  /** {@code d.get(key)} of a parsed object: {@link PyJson#NULL} when absent (Python: None). */
  @SuppressWarnings("unchecked")
  private static Object get(Object dict, String key) {
    Object v = ((Map<String, Object>) dict).get(key);
    return v == null ? PyJson.NULL : v;
  }

  /** 1 or 2 when Python's {@code version in (1, 2)} holds (True == 1, 2.0 == 2), else -1. */
  private static int versionOf(Object v) {
    if (Boolean.TRUE.equals(v)) return 1;
    if (v instanceof BigInteger) {
      BigInteger b = (BigInteger) v;
      return b.equals(BigInteger.ONE) ? 1 : b.equals(BigInteger.valueOf(2)) ? 2 : -1;
    }
    if (v instanceof Double) {
      double d = (Double) v;
      return d == 1.0 ? 1 : d == 2.0 ? 2 : -1;
    }
    return -1;
  }

  /** Python's {@code isinstance(x, int) and not isinstance(x, bool) and x >= 0}, else null. */
  private static BigInteger uint(Object x) {
    return x instanceof BigInteger && ((BigInteger) x).signum() >= 0 ? (BigInteger) x : null;
  }

  /** A non-empty list of identifier names, else null. */
  @SuppressWarnings("unchecked")
  private static List<String> entries(Object x) {
    if (!(x instanceof List) || ((List<Object>) x).isEmpty()) return null;
    List<String> out = new ArrayList<String>();
    for (Object e : (List<Object>) x) {
      if (!(e instanceof String) || !ENTRY.matcher((String) e).matches()) return null;
      out.add((String) e);
    }
    return out;
  }
}
