package org.rsnetedge.demo;

import android.content.Context;
import android.content.res.AssetManager;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;
import org.pytorch.executorch.EValue;
import org.pytorch.executorch.Module;
import org.pytorch.executorch.Tensor;
import org.rsnetedge.core.Manifest;
import org.rsnetedge.core.Preprocess;

/**
 * The ExecuTorch program, loaded ONCE. Switching resolution only changes the method name passed to
 * {@link Module#execute(String, EValue...)} ({@code forward_224}, {@code forward_160}, ...); the
 * shared weights stay loaded. Call everything from one background thread.
 */
final class ModelRunner {
  /** One inference: the method that ran, its logits and the wall time of execute() in ms. */
  static final class Result {
    final int resolution;
    final String method;
    final float[] logits;
    final double latencyMs;

    Result(int resolution, String method, float[] logits, double latencyMs) {
      this.resolution = resolution;
      this.method = method;
      this.logits = logits;
      this.latencyMs = latencyMs;
    }
  }

  private final Manifest manifest;
  private final Module module;

  private ModelRunner(Manifest manifest, Module module) {
    this.manifest = manifest;
    this.module = module;
  }

  /**
   * Copy the artifact named by the manifest from assets to the app's files dir (only when missing or
   * different), check its sha256 against the manifest, load it and pre-load every entry method.
   */
  static ModelRunner load(Context ctx, Manifest manifest, String defaultAssetName) throws IOException {
    String name = manifest.artifactFile() != null ? manifest.artifactFile() : defaultAssetName;
    File file = new File(ctx.getFilesDir(), name);
    String want = manifest.artifactSha256();
    boolean fresh = file.isFile() && (want == null || want.equalsIgnoreCase(sha256(file)));
    if (!fresh) {
      copyAsset(ctx.getAssets(), name, file);
      if (want != null && !want.equalsIgnoreCase(sha256(file))) {
        throw new IOException(
            "manifest does not match " + name + ": the sha256 recorded at conversion differs "
                + "(copy the manifest written with this artifact)");
      }
    }
    Module module = Module.load(file.getAbsolutePath());
    for (Manifest.Entry e : manifest.entries) {
      int err = module.loadMethod(e.entry);
      if (err != 0) {
        throw new IOException(
            String.format(Locale.US, "method %s failed to load (ExecuTorch error 0x%x); is this "
                + "the artifact the manifest describes?", e.entry, err));
      }
    }
    return new ModelRunner(manifest, module);
  }

  /** Preprocess ARGB pixels for {@code resolution} and execute that resolution's entry point. */
  Result run(int[] argb, int width, int height, int resolution) {
    String method = manifest.entryFor(resolution).entry;
    float[] input = Preprocess.toTensor(argb, width, height, resolution, manifest.input);
    Tensor tensor = Tensor.fromBlob(input, Preprocess.shape(resolution, manifest.input.layout));
    long t0 = System.nanoTime();
    EValue[] out = module.execute(method, EValue.from(tensor));
    double ms = (System.nanoTime() - t0) / 1e6;
    if (out.length == 0 || !out[0].isTensor()) {
      throw new IllegalStateException(method + " returned no tensor");
    }
    return new Result(resolution, method, out[0].toTensor().getDataAsFloatArray(), ms);
  }

  void close() {
    module.destroy();
  }

  private static void copyAsset(AssetManager assets, String name, File dst) throws IOException {
    File tmp = new File(dst.getParentFile(), dst.getName() + ".tmp");
    try (InputStream in = assets.open(name);
        OutputStream out = new FileOutputStream(tmp)) {
      byte[] buf = new byte[1 << 16];
      int n;
      while ((n = in.read(buf)) > 0) out.write(buf, 0, n);
    }
    if (!tmp.renameTo(dst)) throw new IOException("cannot move " + tmp + " to " + dst);
  }

  private static String sha256(File f) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IOException(e);
    }
    try (InputStream in = new FileInputStream(f)) {
      byte[] buf = new byte[1 << 16];
      int n;
      while ((n = in.read(buf)) > 0) md.update(buf, 0, n);
    }
    StringBuilder sb = new StringBuilder();
    for (byte b : md.digest()) sb.append(String.format(Locale.US, "%02x", b));
    return sb.toString();
  }
}
