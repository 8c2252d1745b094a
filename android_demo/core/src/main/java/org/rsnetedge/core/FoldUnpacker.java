package org.rsnetedge.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Unpacks the programs of an RSFOLD compact artifact (rsnet_edge/rsfold.py; layout in its
 * docstring, versions 1 and 2) into the BN-folded programs the STOCK runtime loads, byte for byte
 * what Python's {@code rsnet_edge.rsfold.Container.unpack} produces: verbatim copies plus float32
 * {@code w[e] * s[(e / inner) % channels]} (IEEE-754 single precision, round to nearest; Java's
 * float multiply is exactly that), then the size and sha256 the header records are checked.
 *
 * <p>A version-2 container holds one program per resolution (entry points {@code forward_<r>}; the
 * top one also {@code forward}), so an app that keeps one resolution resident unpacks only the
 * program it runs ({@link #cachedUnpack(File, File, String)}). Header checks, bounds and their
 * one-line messages are Python's ({@link RsfoldHeader}). Unpacking is streamed op by op through
 * fixed buffers (under 2 MB whatever the container claims) into a temp file created new ({@code
 * CREATE_NEW}: never an existing file or a planted link) with a unique name in the target folder,
 * renamed into place only when the sha256 matches; on any failure the temp file is removed and
 * nothing is written ({@link TempFiles}: temp files of writers that died are removed by the next
 * write into that folder). Pure Java 8 API (Android 26+).
 *
 * <pre>
 * java -cp core.jar org.rsnetedge.core.FoldUnpacker IN.pte.rsfold OUT.pte             # one program
 * java -cp core.jar org.rsnetedge.core.FoldUnpacker IN.pte.rsfold OUT --entry forward_160
 * java -cp core.jar org.rsnetedge.core.FoldUnpacker IN.pte.rsfold OUTDIR   # several: OUTDIR/&lt;entry&gt;.pte
 * </pre>
 * (the same command line as {@code python -m rsnet_edge.rsfold}).
 */
public final class FoldUnpacker {
  public static final String SUFFIX = ".rsfold";
  private static final int COPY_CHUNK = 1 << 20;
  private static final int CHUNK_FLOATS = 1 << 16;
  private static final int SCALE_WINDOW = 1 << 14;

  private FoldUnpacker() {}

  /** What {@link #cachedUnpack} did. */
  public static final class Unpacked {
    public final File file;
    public final String sha256;
    public final long size;
    /** True when a cached file with the right size and sha256 was found and nothing was unpacked. */
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
    byte[] head = new byte[RsfoldHeader.MAGIC.length];
    try (InputStream in = new FileInputStream(f)) {
      int n = 0;
      while (n < head.length) {
        int k = in.read(head, n, head.length - n);
        if (k < 0) return false;
        n += k;
      }
      return Arrays.equals(head, RsfoldHeader.MAGIC);
    } catch (IOException e) {
      return false;
    }
  }

  /** The validated header of {@code f} (everything but the programs' hashes). */
  public static RsfoldHeader readHeader(File f) throws IOException {
    return RsfoldHeader.read(f);
  }

  // --------------------------------------------------------------------------- unpacking
  /** Unpack a one-program container into {@code out} (atomic); returns the program's sha256. */
  public static String unpack(File in, File out) throws IOException {
    return unpack(in, null, out);
  }

  /**
   * Unpack the program serving {@code entry} (null: the only program of a one-program container)
   * into {@code out}, atomically; returns its sha256.
   */
  public static String unpack(File in, String entry, File out) throws IOException {
    try (RandomAccessFile raf = RsfoldHeader.open(in)) {
      FileChannel ch = raf.getChannel();
      RsfoldHeader h = RsfoldHeader.read(ch, in.getName());
      RsfoldHeader.Output o = pick(h, entry);
      checkOutput(in, out, false);
      TempFiles.cleanStale(out.getAbsoluteFile().getParentFile(), out.getName());
      Temp t = writeTemp(ch, h, o, out);
      publish(t, out);
      return t.sha256;
    }
  }

  /**
   * Every program into {@code dir} as {@code <first entry>.<inner>} (created if missing), all or
   * nothing: each is verified in a temp file before any is renamed into place.
   */
  public static List<Unpacked> unpackAll(File in, File dir) throws IOException {
    try (RandomAccessFile raf = RsfoldHeader.open(in)) {
      FileChannel ch = raf.getChannel();
      RsfoldHeader h = RsfoldHeader.read(ch, in.getName());
      checkOutput(in, dir, true);
      List<File> outs = new ArrayList<File>();
      for (RsfoldHeader.Output o : h.outputs) {
        outs.add(new File(dir, o.fileName(h.inner)));
        checkNotInput(in, outs.get(outs.size() - 1));
      }
      boolean made = !dir.exists();
      if (made && !dir.mkdir()) throw new IOException("cannot create the folder " + dir);
      List<Temp> temps = new ArrayList<Temp>();
      boolean done = false;
      try {
        for (int k = 0; k < outs.size(); k++) {
          TempFiles.cleanStale(dir, outs.get(k).getName());
          temps.add(writeTemp(ch, h, h.outputs.get(k), outs.get(k)));
        }
        List<Unpacked> got = new ArrayList<Unpacked>();
        for (int k = 0; k < outs.size(); k++) {
          publish(temps.get(k), outs.get(k));
          got.add(new Unpacked(outs.get(k), temps.get(k).sha256, h.outputs.get(k).size, false));
        }
        done = true;
        return got;
      } finally {
        if (!done) {
          for (Temp t : temps) TempFiles.remove(t.file);
          if (made) dir.delete(); // only when still empty
        }
      }
    }
  }

  /** {@link #cachedUnpack(File, File, String)} of a one-program container. */
  public static Unpacked cachedUnpack(File in, File dir) throws IOException {
    return cachedUnpack(in, dir, null);
  }

  /**
   * The program serving {@code entry} (null: the only one) in {@code dir} as {@code
   * <sha256>.<inner>}, unpacked now unless a regular file there has the size and sha256 the header
   * records (checked on every call). Only that program is unpacked: a lean app's first start costs
   * one program, and every other resolution one more, the first time it is needed.
   */
  public static Unpacked cachedUnpack(File in, File dir, String entry) throws IOException {
    try (RandomAccessFile raf = RsfoldHeader.open(in)) {
      FileChannel ch = raf.getChannel();
      RsfoldHeader h = RsfoldHeader.read(ch, in.getName());
      RsfoldHeader.Output o = pick(h, entry);
      File target = new File(dir, o.sha256 + "." + h.inner);
      if (Files.isRegularFile(target.toPath(), LinkOption.NOFOLLOW_LINKS) && target.length() == o.size
          && o.sha256.equals(sha256(target))) {
        return new Unpacked(target, o.sha256, o.size, true);
      }
      if (!dir.isDirectory() && !dir.mkdirs()) throw new IOException("cannot create the folder " + dir);
      TempFiles.cleanStale(dir, null);
      Temp t = writeTemp(ch, h, o, target);
      publish(t, target);
      return new Unpacked(target, t.sha256, o.size, false);
    }
  }

  private static RsfoldHeader.Output pick(RsfoldHeader h, String entry) throws RsfoldException {
    if (entry != null) return h.outputFor(entry);
    if (h.outputs.size() != 1) {
      throw new RsfoldException(h.name + " holds " + h.outputs.size() + " programs (one per resolution): "
          + "unpack one by its entry point (--entry NAME) or all of them into a folder");
    }
    return h.outputs.get(0);
  }

  /** A verified program in its temp file. */
  private static final class Temp {
    final File file;
    final String sha256;

    Temp(File file, String sha256) {
      this.file = file;
      this.sha256 = sha256;
    }
  }

  /** Program {@code o} into a new temp file beside {@code target}, verified; removed on failure. */
  private static Temp writeTemp(FileChannel in, RsfoldHeader h, RsfoldHeader.Output o, File target)
      throws IOException {
    File tmp = TempFiles.name(target);
    FileChannel out = TempFiles.create(tmp);
    boolean ok = false;
    try {
      MessageDigest md = sha256Digest();
      Streams b = new Streams(in, out, md, h.payloadOffset);
      for (RsfoldHeader.Op op : o.ops) {
        if (op.scale) b.scale(op);
        else b.copy(op);
      }
      out.force(true);
      String digest = hex(md.digest());
      if (!digest.equals(o.sha256)) {
        String where = h.outputs.size() == 1 ? h.name : h.name + " program " + o.index;
        throw new RsfoldException(where + " is corrupt: it unpacks to sha256 " + digest.substring(0, 12)
            + "..., header says " + o.sha256.substring(0, 12) + "...");
      }
      ok = true;
      return new Temp(tmp, digest);
    } finally {
      out.close();
      if (!ok) TempFiles.remove(tmp);
    }
  }

  /** Rename a verified temp file onto {@code out} (removed if that fails). */
  private static void publish(Temp t, File out) throws IOException {
    try {
      Files.move(t.file.toPath(), out.toPath(), StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      TempFiles.remove(t.file);
      throw e;
    }
  }

  /** The op loop's fixed buffers: bounded memory whatever the container claims. */
  private static final class Streams {
    final FileChannel in;
    final FileChannel out;
    final MessageDigest md;
    final long base;
    final ByteBuffer copyBuf = ByteBuffer.allocate(COPY_CHUNK);
    final ByteBuffer w = ByteBuffer.allocate(4 * CHUNK_FLOATS).order(ByteOrder.LITTLE_ENDIAN);
    final ByteBuffer y = ByteBuffer.allocate(4 * CHUNK_FLOATS).order(ByteOrder.LITTLE_ENDIAN);
    final ByteBuffer sBuf = ByteBuffer.allocate(4 * SCALE_WINDOW).order(ByteOrder.LITTLE_ENDIAN);

    Streams(FileChannel in, FileChannel out, MessageDigest md, long base) {
      this.in = in;
      this.out = out;
      this.md = md;
      this.base = base;
    }

    void copy(RsfoldHeader.Op op) throws IOException {
      long pos = base + op.src;
      for (long left = op.size; left > 0; ) {
        copyBuf.clear();
        copyBuf.limit((int) Math.min(left, COPY_CHUNK));
        readFully(in, copyBuf, pos);
        emit(copyBuf);
        pos += copyBuf.limit();
        left -= copyBuf.limit();
      }
    }

    /** {@code y[e] = w[e] * s[(e / inner) % channels]}, a run of one channel at a time. */
    void scale(RsfoldHeader.Op op) throws IOException {
      long n = op.size / 4;
      long pos = base + op.src;
      long winStart = 0;
      int winLen = 0;
      for (long e = 0; e < n; ) {
        int k = (int) Math.min(n - e, CHUNK_FLOATS);
        w.clear();
        w.limit(4 * k);
        readFully(in, w, pos);
        y.clear();
        for (int j = 0; j < k; ) {
          long q = e / op.inner;
          long c = q % op.channels;
          int run = (int) Math.min(op.inner - (e - q * op.inner), k - j);
          if (c < winStart || c >= winStart + winLen) { // the scales come in windows, too
            winStart = c;
            winLen = (int) Math.min(SCALE_WINDOW, op.channels - c);
            sBuf.clear();
            sBuf.limit(4 * winLen);
            readFully(in, sBuf, base + op.scaleSrc + 4 * c);
          }
          float s = sBuf.getFloat(4 * (int) (c - winStart));
          for (int r = 0; r < run; r++, j++) y.putFloat(4 * j, w.getFloat(4 * j) * s);
          e += run;
        }
        y.limit(4 * k);
        emit(y);
        pos += 4L * k;
      }
    }

    private void emit(ByteBuffer buf) throws IOException {
      md.update(buf.array(), 0, buf.limit());
      buf.position(0);
      while (buf.hasRemaining()) out.write(buf);
    }
  }

  // --------------------------------------------------------------------------- helpers
  /** Refuse, before any work, an output that is an input, or that cannot be created. */
  static void checkOutput(File in, File out, boolean folder) throws IOException {
    checkNotInput(in, out);
    if (folder) {
      if (out.exists() && !out.isDirectory()) throw new RsfoldException(out + " is an existing file, not a folder");
    } else if (out.isDirectory()) {
      throw new RsfoldException(out + " is a directory");
    }
    File dir = out.getAbsoluteFile().getParentFile();
    if (dir == null || !dir.isDirectory()) throw new RsfoldException("the folder of " + out + " does not exist");
  }

  private static void checkNotInput(File in, File out) throws IOException {
    File side = new File(in.getPath() + ArtifactFiles.MANIFEST_SUFFIX);
    if (out.exists() && in.exists() && out.getCanonicalFile().equals(in.getCanonicalFile())) {
      throw new RsfoldException(out + " is the input artifact");
    }
    if (out.exists() && side.exists() && out.getCanonicalFile().equals(side.getCanonicalFile())) {
      throw new RsfoldException(out + " is the input's manifest");
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

  /** Fill {@code buf} from {@code pos}, then flip it for reading. */
  static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      int k = ch.read(buf, pos);
      if (k < 0) throw new RsfoldException("unexpected end of file at byte " + pos);
      pos += k;
    }
    buf.flip();
  }

  // ------------------------------------------------------------------------------ CLI
  /**
   * {@code FoldUnpacker ARTIFACT.rsfold OUT [--entry NAME]}, as {@code python -m rsnet_edge.rsfold}:
   * one program: the file OUT; several: the folder OUT with {@code <entry>.<inner>} per program;
   * {@code --entry NAME}: only the program serving NAME, to the file OUT. Prints {@code <sha256>
   * <file>} per program; errors: one line, exit 2, nothing written.
   */
  public static void main(String[] args) {
    List<String> pos = new ArrayList<String>();
    String entry = null;
    for (int k = 0; k < args.length; k++) {
      if (args[k].equals("--entry") && k + 1 < args.length) entry = args[++k];
      else if (args[k].startsWith("--entry=")) entry = args[k].substring(8);
      else pos.add(args[k]);
    }
    if (pos.size() != 2 || "".equals(entry)) {
      System.err.println("usage: FoldUnpacker ARTIFACT.rsfold OUT [--entry NAME]");
      System.exit(2);
    }
    File in = new File(pos.get(0));
    File out = new File(pos.get(1));
    try {
      RsfoldHeader h = RsfoldHeader.read(in);
      if (entry == null && h.outputs.size() > 1) {
        for (Unpacked u : unpackAll(in, out)) System.out.println(u.sha256 + "  " + u.file);
      } else {
        System.out.println(unpack(in, entry, out) + "  " + out);
      }
    } catch (IOException | RuntimeException e) {
      System.err.println("error: " + String.valueOf(e.getMessage()).replaceAll("\\s+", " ").trim());
      System.exit(2);
    }
  }
}
