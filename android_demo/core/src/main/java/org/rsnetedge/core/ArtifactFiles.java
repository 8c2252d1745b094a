package org.rsnetedge.core;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The file logic of the app's model start-up, kept out of the Android layer so it runs on the JVM:
 * which bundled manifest to read, copying the artifact out of the APK atomically and checked
 * against the manifest's sha256, and comparing the program's methods with the manifest's entries.
 */
public final class ArtifactFiles {
  public static final String MANIFEST_SUFFIX = ".manifest.json";

  private ArtifactFiles() {}

  /** The one {@code *.manifest.json} among the asset names (copy_assets.sh puts exactly one). */
  public static String pickManifest(String[] assetNames) {
    List<String> found = new ArrayList<String>();
    if (assetNames != null) {
      for (String n : assetNames) if (n.endsWith(MANIFEST_SUFFIX)) found.add(n);
    }
    if (found.size() != 1) {
      throw new IllegalArgumentException(
          (found.isEmpty() ? "no *" + MANIFEST_SUFFIX : "several manifests " + found)
              + " in the app's assets; run android_demo/copy_assets.sh ARTIFACT and rebuild");
    }
    return found.get(0);
  }

  /**
   * The manifest's {@code artifact.file} as a plain file name the app can copy to its files dir
   * (no folder part, not hidden); one-line IllegalArgumentException otherwise (or when absent).
   */
  public static String artifactName(Manifest m) {
    String name = m.artifactFile();
    if (name == null || name.isEmpty() || name.startsWith(".") || name.contains("/")
        || name.contains("\\")) {
      throw new IllegalArgumentException("the manifest records no usable artifact.file ("
          + (name == null ? "none" : Json.pyStr(name)) + ")");
    }
    return name;
  }

  /** True when {@code f} exists and (if {@code sha256} is given) has that sha256. */
  public static boolean isFresh(File f, String sha256) throws IOException {
    return f.isFile() && (sha256 == null || sha256.equalsIgnoreCase(FoldUnpacker.sha256(f)));
  }

  /**
   * Copy {@code in} to {@code dst} through a temp file beside it; when {@code sha256} is given the
   * copy must have it, else nothing is written and the message says the manifest does not describe
   * the artifact. The temp file is removed on any failure.
   */
  public static void copyChecked(InputStream in, File dst, String sha256) throws IOException {
    File dir = dst.getAbsoluteFile().getParentFile();
    File tmp = File.createTempFile("." + dst.getName() + ".tmp-", "", dir);
    tmp.deleteOnExit(); // also gone after Ctrl-C (the JVM runs its exit hooks on SIGINT)
    boolean done = false;
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      try (DigestInputStream din = new DigestInputStream(in, md);
          FileOutputStream out = new FileOutputStream(tmp)) {
        byte[] buf = new byte[1 << 16];
        int n;
        while ((n = din.read(buf)) > 0) out.write(buf, 0, n);
        out.getFD().sync();
      }
      StringBuilder got = new StringBuilder();
      for (byte b : md.digest()) got.append(String.format(Locale.US, "%02x", b & 0xFF));
      if (sha256 != null && !sha256.equalsIgnoreCase(got.toString())) {
        throw new IOException("the manifest does not describe " + dst.getName() + ": its sha256 is "
            + got.substring(0, 12) + "..., the manifest records " + sha256.substring(0, Math.min(12, sha256.length()))
            + "... (copy the manifest written with this artifact)");
      }
      Files.move(tmp.toPath(), dst.toPath(), StandardCopyOption.ATOMIC_MOVE);
      done = true;
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("no SHA-256 in this JVM", e);
    } finally {
      if (!done && tmp.exists() && !tmp.delete()) tmp.deleteOnExit();
    }
  }

  /** The manifest's entry names the program lacks (empty when every entry is a method). */
  public static List<String> missingMethods(Manifest m, String[] methods) {
    List<String> wanted = new ArrayList<String>();
    for (Manifest.Entry e : m.entries) wanted.add(e.entry);
    return missingMethods(wanted, methods);
  }

  /** The {@code wanted} names that are not among {@code methods} (a lean app: one program's entries). */
  public static List<String> missingMethods(List<String> wanted, String[] methods) {
    Set<String> have = new HashSet<String>(Arrays.asList(methods));
    List<String> missing = new ArrayList<String>();
    for (String w : wanted) if (!have.contains(w)) missing.add(w);
    return missing;
  }

  /** One line for a manifest whose entries are not methods of the program. */
  public static String mismatchMessage(String artifact, List<String> missing, String[] methods) {
    String[] sorted = methods.clone();
    Arrays.sort(sorted);
    return "the manifest does not match " + artifact + ": it lists " + missing
        + " but the program's methods are " + Arrays.toString(sorted);
  }
}
