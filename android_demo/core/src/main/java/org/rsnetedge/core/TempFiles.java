package org.rsnetedge.core;

import java.io.File;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Temp files beside an output, as rsnet_edge.files names them: {@code .<stem>.tmp-<pid>-<8 hex><suffix>}
 * in the output's folder (so the final rename is atomic), created new ({@code CREATE_NEW}, i.e.
 * {@code O_CREAT | O_EXCL}: never an existing file, never through a planted link), unique per call
 * (threads of one process never share one); those of writers that died are removed later.
 */
public final class TempFiles {
  private static final Pattern TEMP = Pattern.compile("\\..*\\.tmp-(\\d+)-[0-9a-f]{8}(\\.[^.]*)?");
  private static final SecureRandom RANDOM = new SecureRandom();

  private TempFiles() {}

  /** A fresh temp name beside {@code target}. */
  static File name(File target) {
    String n = target.getName();
    int dot = n.lastIndexOf('.');
    String stem = dot > 0 ? n.substring(0, dot) : n;
    String suffix = dot > 0 ? n.substring(dot) : "";
    String tmp = String.format(Locale.US, ".%s.tmp-%d-%08x%s", stem, Math.max(pid(), 0), RANDOM.nextInt(), suffix);
    return new File(target.getAbsoluteFile().getParentFile(), tmp);
  }

  /** Create {@code tmp} (it must not exist) for writing; removed at JVM exit if still there. */
  static FileChannel create(File tmp) throws IOException {
    FileChannel ch;
    try {
      ch = FileChannel.open(tmp.toPath(), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    } catch (FileAlreadyExistsException e) {
      throw new IOException("cannot create " + tmp + ": something already has that name");
    }
    tmp.deleteOnExit(); // the JVM CLI: also gone after Ctrl-C (the JVM runs its exit hooks on SIGINT)
    return ch;
  }

  static void remove(File f) {
    if (f != null && f.exists() && !f.delete()) f.deleteOnExit();
  }

  /** This process's id, from /proc/self (Linux, Android); -1 without /proc. */
  static int pid() {
    try {
      return Integer.parseInt(new File("/proc/self").getCanonicalFile().getName());
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
  }

  /**
   * Remove the temp files in {@code dir} (of the output named {@code target} only, when given) whose
   * writing process is gone (killed during a write); a live writer's files are left alone. Needs
   * /proc (Linux, Android: where another app's process is hidden, only this app writes its files
   * dir); elsewhere nothing is removed. Returns what was removed.
   */
  public static List<File> cleanStale(File dir, String target) {
    List<File> removed = new ArrayList<File>();
    String[] names = dir == null ? null : dir.list();
    int me = pid();
    if (names == null || me < 0) return removed;
    String prefix = null;
    if (target != null) {
      int dot = target.lastIndexOf('.');
      prefix = "." + (dot > 0 ? target.substring(0, dot) : target) + ".tmp-";
    }
    for (String n : names) {
      Matcher m = TEMP.matcher(n);
      if (!m.matches() || (prefix != null && !n.startsWith(prefix))) continue;
      String pid = m.group(1);
      if (pid.length() > 9 || Integer.parseInt(pid) == me || new File("/proc/" + pid).exists()) continue;
      File f = new File(dir, n);
      if (f.delete()) removed.add(f);
    }
    return removed;
  }
}
