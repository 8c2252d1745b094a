package org.rsnetedge.demo;

import android.content.Context;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Locale;
import org.pytorch.executorch.EValue;
import org.pytorch.executorch.ExecutorchRuntimeException;
import org.pytorch.executorch.Module;
import org.pytorch.executorch.Tensor;
import org.rsnetedge.core.ArtifactFiles;
import org.rsnetedge.core.FoldUnpacker;
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
   * Copy the artifact named by the manifest ({@code artifact.file}) from assets to the app's files
   * dir (only when missing or different; the copy must have the manifest's sha256), unpack it once
   * when it is an RSFOLD compact artifact ({@code *.rsfold}: the folded .pte is written to
   * {@code files/rsfold/<sha256>.pte} and reused while its sha256 matches), load it with the stock
   * ExecuTorch AAR and pre-load every entry method. Every failure is an IOException whose one-line
   * message names the file, the method and whether the manifest matches the artifact.
   */
  static ModelRunner load(Context ctx, Manifest manifest) throws IOException {
    String name;
    try {
      name = ArtifactFiles.artifactName(manifest);
    } catch (IllegalArgumentException e) {
      throw new IOException(e.getMessage());
    }
    File file = new File(ctx.getFilesDir(), name);
    String want = manifest.artifactSha256();
    if (!ArtifactFiles.isFresh(file, want)) {
      try (InputStream in = ctx.getAssets().open(name)) {
        ArtifactFiles.copyChecked(in, file, want);
      }
    }
    String shaNote = want != null
        ? "the artifact's sha256 matches its manifest"
        : "the manifest records no sha256, so it may not describe this artifact";
    File program = file;
    if (name.endsWith(FoldUnpacker.SUFFIX)) {
      program = FoldUnpacker.cachedUnpack(file, new File(ctx.getFilesDir(), "rsfold")).file;
    }
    Module module;
    String[] methods;
    try {
      module = Module.load(program.getAbsolutePath());
      methods = module.getMethods();
    } catch (ExecutorchRuntimeException e) {
      throw new IOException(String.format(Locale.US,
          "ExecuTorch cannot load %s (error 0x%x: %s); %s, so the program itself is refused "
              + "(exported with another executorch version than the AAR's 1.5.1?)",
          name, e.getErrorCode(), oneLine(e.getMessage()), shaNote));
    } catch (IllegalArgumentException e) {
      throw new IOException("cannot load " + name + ": " + oneLine(e.getMessage()));
    }
    List<String> missing = ArtifactFiles.missingMethods(manifest, methods);
    if (!missing.isEmpty()) {
      module.destroy();
      throw new IOException(ArtifactFiles.mismatchMessage(name, missing, methods));
    }
    for (Manifest.Entry e : manifest.entries) {
      try {
        module.loadMethod(e.entry);
      } catch (ExecutorchRuntimeException ex) {
        module.destroy();
        throw new IOException(String.format(Locale.US,
            "method %s of %s failed to load (ExecuTorch error 0x%x: %s); %s and lists this method, "
                + "so the runtime refuses it (exported with another executorch version than the "
                + "AAR's 1.5.1, or an operator missing from the AAR?)",
            e.entry, name, ex.getErrorCode(), oneLine(ex.getMessage()), shaNote));
      }
    }
    return new ModelRunner(manifest, module);
  }

  private static String oneLine(String s) {
    return s == null ? "no details" : s.replaceAll("\\s+", " ").trim();
  }

  /** Preprocess ARGB pixels for {@code resolution} and execute that resolution's entry point. */
  Result run(int[] argb, int width, int height, int resolution) {
    String method = manifest.entryFor(resolution).entry;
    float[] input = Preprocess.toTensor(argb, width, height, resolution, manifest.input);
    Tensor tensor = Tensor.fromBlob(input, Preprocess.shape(resolution, manifest.input.layout));
    long t0 = System.nanoTime();
    EValue[] out;
    try {
      out = module.execute(method, EValue.from(tensor));
    } catch (ExecutorchRuntimeException e) {
      throw new IllegalStateException(String.format(Locale.US,
          "method %s failed (ExecuTorch error 0x%x: %s)", method, e.getErrorCode(),
          oneLine(e.getMessage())), e);
    }
    double ms = (System.nanoTime() - t0) / 1e6;
    if (out.length == 0 || !out[0].isTensor()) {
      throw new IllegalStateException(method + " returned no tensor");
    }
    return new Result(resolution, method, out[0].toTensor().getDataAsFloatArray(), ms);
  }

  void close() {
    module.destroy();
  }
}
