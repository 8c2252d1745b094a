package org.rsnetedge.core;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;

/** Finds the repository's shared test data (tests/data/) from the JVM tests. */
final class TestData {
  private TestData() {}

  /**
   * The policy vectors: system property {@code rsnet.vectors}, else env {@code
   * RSNET_POLICY_VECTORS}, else tests/data/policy_vectors.json found by walking up from the
   * working directory (or from system property {@code rsnet.root}).
   */
  static File vectors() {
    String p = System.getProperty("rsnet.vectors");
    if (p == null || p.isEmpty()) p = System.getenv("RSNET_POLICY_VECTORS");
    if (p != null && !p.isEmpty()) return mustExist(new File(p));
    return file("policy_vectors.json");
  }

  /** A file in the repository's tests/data/. */
  static File file(String name) {
    String root = System.getProperty("rsnet.root");
    File dir = new File(root != null && !root.isEmpty() ? root : ".").getAbsoluteFile();
    for (File d = dir; d != null; d = d.getParentFile()) {
      File f = new File(d, "tests" + File.separator + "data" + File.separator + name);
      if (f.isFile()) return f;
    }
    throw new IllegalStateException(
        "cannot find tests/data/" + name + " above " + dir + " (set -Drsnet.root=REPO)");
  }

  static String read(File f) {
    try {
      return new String(Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalStateException("cannot read " + f + ": " + e.getMessage(), e);
    }
  }

  private static File mustExist(File f) {
    if (!f.isFile()) throw new IllegalStateException("vectors file " + f + " does not exist");
    return f;
  }
}
