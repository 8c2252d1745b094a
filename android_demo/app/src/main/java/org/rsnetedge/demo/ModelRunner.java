package org.rsnetedge.demo;

import android.content.Context;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.pytorch.executorch.EValue;
import org.pytorch.executorch.ExecutorchRuntimeException;
import org.pytorch.executorch.Module;
import org.pytorch.executorch.Tensor;
import org.rsnetedge.core.ArtifactFiles;
import org.rsnetedge.core.Manifest;
import org.rsnetedge.core.Preprocess;
import org.rsnetedge.core.ResidentPrograms;

/**
 * The ExecuTorch side of the app. What stays loaded is decided by {@link ResidentPrograms} (core,
 * JVM-tested):
 *
 * <ul>
 *   <li><b>Lean (default, {@link #RESIDENT} = ONE)</b>, for a compact {@code .pte.rsfold} artifact
 *       (one program per resolution): ONE {@link Module} is loaded, the program serving the current
 *       entry, unpacked into {@code files/rsfold/<sha256>.pte} the first time it is needed. When the
 *       resolution changes to an entry of another program, the current Module is destroyed first
 *       ({@link Module#destroy()}: the ExecuTorch Java API cannot unload a single method, so the
 *       whole Module goes, with its packed weights) and the next one is loaded: a switch costs one
 *       program load (milliseconds; minutes apart in practice, driven by battery and thermal state),
 *       and the app holds about one single-resolution model's memory instead of S of them.
 *   <li><b>Every entry resident ({@link #RESIDENT} = ALL)</b>: every program is loaded at start and
 *       kept; switching only changes the method name passed to {@link Module#execute}.
 *   <li>A plain {@code .pte} (one program with every method) is loaded once, as before, in either
 *       mode.
 * </ul>
 * Call everything (load, run, close) from one background thread: {@code destroy()} refuses to run
 * while a method executes.
 */
final class ModelRunner {
  /**
   * ONE (lean): only the program in use stays loaded. Change to {@code ResidentPrograms.Mode.ALL}
   * to keep every entry resident (free switches, about S times the memory).
   */
  static final ResidentPrograms.Mode RESIDENT = ResidentPrograms.Mode.ONE;

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
  private final ResidentPrograms<Module> programs;

  private ModelRunner(Manifest manifest, ResidentPrograms<Module> programs) {
    this.manifest = manifest;
    this.programs = programs;
  }

  /**
   * Copy the artifact named by the manifest ({@code artifact.file}) from assets to the app's files
   * dir (only when missing or different; the copy must have the manifest's sha256), then load what
   * {@link #RESIDENT} asks for: lean, the program serving {@code firstResolution}; ALL, every
   * program. Every failure is an IOException whose one-line message names the file, the method and
   * whether the manifest matches the artifact.
   */
  static ModelRunner load(Context ctx, Manifest manifest, int firstResolution) throws IOException {
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
    List<String> entries = new ArrayList<String>();
    for (Manifest.Entry e : manifest.entries) entries.add(e.entry);
    ResidentPrograms<Module> programs = new ResidentPrograms<Module>(file,
        new File(ctx.getFilesDir(), "rsfold"), entries, RESIDENT, new ExecuTorch(name, shaNote));
    if (RESIDENT == ResidentPrograms.Mode.ALL) programs.loadAll();
    else programs.module(manifest.entryFor(firstResolution).entry);
    return new ModelRunner(manifest, programs);
  }

  /** Loads a program with the stock ExecuTorch AAR; {@code destroy()} releases it. */
  private static final class ExecuTorch implements ResidentPrograms.Loader<Module> {
    private final String name;
    private final String shaNote;

    ExecuTorch(String name, String shaNote) {
      this.name = name;
      this.shaNote = shaNote;
    }

    @Override
    public Module load(File program, List<String> methods) throws IOException {
      String what = program.getName().equals(name) ? name : name + " (its program " + program.getName() + ")";
      Module module;
      String[] names;
      try {
        module = Module.load(program.getAbsolutePath());
        names = module.getMethods();
      } catch (ExecutorchRuntimeException e) {
        throw new IOException(String.format(Locale.US,
            "ExecuTorch cannot load %s (error 0x%x: %s); %s, so the program itself is refused "
                + "(exported with another executorch version than the AAR's 1.5.1?)",
            what, e.getErrorCode(), oneLine(e.getMessage()), shaNote));
      } catch (IllegalArgumentException e) {
        throw new IOException("cannot load " + what + ": " + oneLine(e.getMessage()));
      }
      List<String> missing = ArtifactFiles.missingMethods(methods, names);
      if (!missing.isEmpty()) {
        module.destroy();
        throw new IOException(ArtifactFiles.mismatchMessage(what, missing, names));
      }
      for (String method : methods) {
        try {
          module.loadMethod(method);
        } catch (ExecutorchRuntimeException ex) {
          module.destroy();
          throw new IOException(String.format(Locale.US,
              "method %s of %s failed to load (ExecuTorch error 0x%x: %s); %s and lists this method, "
                  + "so the runtime refuses it (exported with another executorch version than the "
                  + "AAR's 1.5.1, or an operator missing from the AAR?)",
              method, what, ex.getErrorCode(), oneLine(ex.getMessage()), shaNote));
        }
      }
      return module;
    }

    @Override
    public void release(Module module) {
      module.destroy();
    }
  }

  private static String oneLine(String s) {
    return s == null ? "no details" : s.replaceAll("\\s+", " ").trim();
  }

  /**
   * Preprocess ARGB pixels for {@code resolution} and execute that resolution's entry point (lean:
   * after loading its program when another one is resident; that time is in {@link #memory()}).
   */
  Result run(int[] argb, int width, int height, int resolution) {
    String method = manifest.entryFor(resolution).entry;
    Module module;
    try {
      module = programs.module(method);
    } catch (IOException e) {
      throw new IllegalStateException("cannot load the program for " + method + ": " + e.getMessage(), e);
    }
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

  /** What is loaded now (any thread). */
  ResidentPrograms.Snapshot memory() {
    return programs.snapshot();
  }

  void close() {
    programs.close();
  }
}
