package org.rsnetedge.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The artifact manifest ({@code rs_mbv2.pte.manifest.json}), read-only: the Java reader of the
 * schema defined in rsnet_edge/manifest.py (schema_version 1). Validation mirrors {@code
 * rsnet_edge.manifest.validate}; on top of it the policy is parsed (or defaulted) and checked
 * against the entries.
 */
public final class Manifest {
  public static final String FORMAT = "rsnet-edge-manifest";
  public static final int SCHEMA_VERSION = 1;
  public static final String DEFAULT_ENTRY = "forward";
  static final List<String> BACKENDS =
      Arrays.asList("executorch", "coreml", "tflite", "onnx", "torch");
  static final List<String> LAYOUTS = Arrays.asList("NCHW", "NHWC");
  static final List<String> WEIGHTS_MODES = Arrays.asList("shared", "affine", "folded");
  static final List<String> DTYPES = Arrays.asList("fp32", "fp16", "int8");
  /**
   * The keys the schema knows, in the field order of rsnet_edge/manifest.py's dataclasses
   * (Manifest, InputSpec, Entry). Any other key is refused: a typo never falls back to a default.
   * arch_args, policy (validated as a Policy), artifact, checkpoint, params and extra are
   * free-form objects.
   */
  static final List<String> TOP_KEYS = Arrays.asList(
      "backend", "arch", "arch_args", "input", "class_names", "entries", "default_resolution",
      "weights", "dtype", "policy", "artifact", "checkpoint", "params", "extra", "schema_version",
      "format");
  static final List<String> INPUT_KEYS = Arrays.asList(
      "mean", "std", "crop_pct", "layout", "dtype", "color", "scale", "interpolation");
  static final List<String> ENTRY_KEYS = Arrays.asList(
      "resolution", "entry", "madds", "top1", "top5", "trained");

  /** The one naming rule for per-resolution entry points: {@code forward_224}. */
  public static String entryName(int resolution) {
    return "forward_" + resolution;
  }

  /** Preprocessing facts ({@code "input"}). */
  public static final class InputSpec {
    public final float[] mean;
    public final float[] std;
    public final double cropPct;
    public final String layout;
    public final String dtype;
    public final String color;
    public final double scale;
    public final String interpolation;

    InputSpec(
        float[] mean, float[] std, double cropPct, String layout, String dtype, String color,
        double scale, String interpolation) {
      this.mean = mean;
      this.std = std;
      this.cropPct = cropPct;
      this.layout = layout;
      this.dtype = dtype;
      this.color = color;
      this.scale = scale;
      this.interpolation = interpolation;
    }

    /** Shorter-side size before the centre crop: round(r / crop_pct), Python rounding. */
    public int resizeSize(int resolution) {
      return Preprocess.resizeSize(resolution, cropPct);
    }
  }

  /** One served resolution ({@code "entries"} item). */
  public static final class Entry {
    public final int resolution;
    public final String entry;
    public final Long madds;
    public final Double top1;
    public final Double top5;
    public final boolean trained;

    Entry(int resolution, String entry, Long madds, Double top1, Double top5, boolean trained) {
      this.resolution = resolution;
      this.entry = entry;
      this.madds = madds;
      this.top1 = top1;
      this.top5 = top5;
      this.trained = trained;
    }
  }

  public final int schemaVersion;
  public final String backend;
  public final String arch;
  public final JsonObject archArgs;
  public final String weights;
  public final String dtype;
  public final InputSpec input;
  public final List<String> classNames;
  public final int defaultResolution;
  public final List<Entry> entries;
  /** The policy to run: the manifest's, or the default for its resolutions when it has none. */
  public final Policy policy;
  /** True when the manifest carried no policy and {@link #policy} is the default one. */
  public final boolean policyIsDefault;
  public final JsonObject artifact;
  public final JsonObject checkpoint;
  public final JsonObject params;
  public final JsonObject extra;

  private Manifest(JsonObject d) {
    schemaVersion = d.get("schema_version").getAsInt();
    backend = d.get("backend").getAsString();
    arch = d.get("arch").getAsString();
    archArgs = objOrEmpty(d, "arch_args");
    weights = strOr(d, "weights", "shared");
    dtype = strOr(d, "dtype", "fp32");
    JsonObject in = d.getAsJsonObject("input");
    input =
        new InputSpec(
            floats(in.getAsJsonArray("mean")),
            floats(in.getAsJsonArray("std")),
            in.has("crop_pct") ? in.get("crop_pct").getAsDouble() : 0.875,
            strOr(in, "layout", "NCHW"),
            strOr(in, "dtype", "float32"),
            strOr(in, "color", "RGB"),
            in.has("scale") ? in.get("scale").getAsDouble() : 255.0,
            strOr(in, "interpolation", "bilinear"));
    List<String> names = new ArrayList<String>();
    for (JsonElement e : d.getAsJsonArray("class_names")) names.add(e.getAsString());
    classNames = Collections.unmodifiableList(names);
    defaultResolution = d.get("default_resolution").getAsInt();
    List<Entry> es = new ArrayList<Entry>();
    for (JsonElement el : d.getAsJsonArray("entries")) {
      JsonObject e = el.getAsJsonObject();
      es.add(
          new Entry(
              e.get("resolution").getAsInt(),
              e.get("entry").getAsString(),
              Json.isNum(e.get("madds")) ? Long.valueOf(e.get("madds").getAsLong()) : null,
              Json.isNum(e.get("top1")) ? Double.valueOf(e.get("top1").getAsDouble()) : null,
              Json.isNum(e.get("top5")) ? Double.valueOf(e.get("top5").getAsDouble()) : null,
              !e.has("trained") || e.get("trained").isJsonNull() || e.get("trained").getAsBoolean()));
    }
    entries = Collections.unmodifiableList(es);
    JsonElement pol = d.get("policy");
    policyIsDefault = Json.isNull(pol) || (pol.isJsonObject() && pol.getAsJsonObject().size() == 0);
    try {
      policy = Policy.forManifest(pol, resolutions());
    } catch (PolicyException ex) {
      throw new ManifestException("manifest policy: " + ex.getMessage());
    }
    artifact = objOrEmpty(d, "artifact");
    checkpoint = objOrEmpty(d, "checkpoint");
    params = objOrEmpty(d, "params");
    extra = objOrEmpty(d, "extra");
  }

  // ------------------------------------------------------------------------------ parsing
  public static Manifest fromJson(String text) {
    String refused = Json.shapeError(text, "manifest");
    if (refused != null) throw new ManifestException(refused);
    JsonElement e;
    try {
      e = JsonParser.parseString(text);
    } catch (RuntimeException ex) {
      throw new ManifestException("manifest is not valid JSON: " + ex.getMessage(), ex);
    }
    return fromJson(e);
  }

  public static Manifest fromJson(JsonElement e) {
    validate(e);
    return new Manifest(e.getAsJsonObject());
  }

  /** Throw ManifestException with one clear line if {@code e} is not a valid manifest. */
  public static void validate(JsonElement el) {
    need(el != null && el.isJsonObject(), "manifest must be a JSON object");
    JsonObject d = el.getAsJsonObject();
    JsonElement fmt = d.get("format");
    need(Json.isString(fmt) && FORMAT.equals(fmt.getAsString()),
        "not an rsnet-edge manifest (format=" + Json.repr(fmt) + ")");
    JsonElement v = d.get("schema_version");
    need(Json.isInt(v), "manifest has no integer schema_version");
    need(v.getAsInt() <= SCHEMA_VERSION,
        "manifest schema_version " + v.getAsInt() + " is newer than this library understands ("
            + SCHEMA_VERSION + "); upgrade rsnet-edge");
    noUnknown(d, TOP_KEYS, "manifest");
    for (String key :
        new String[] {"backend", "arch", "arch_args", "input", "class_names", "entries",
            "default_resolution"}) {
      need(d.has(key), "manifest is missing '" + key + "'");
    }
    need(Json.isString(d.get("backend")) && BACKENDS.contains(d.get("backend").getAsString()),
        "unknown backend " + Json.repr(d.get("backend")) + " (expected one of " + BACKENDS + ")");
    need(Json.isString(d.get("arch")), "manifest arch must be a string");
    need(d.get("arch_args").isJsonObject(), "manifest arch_args must be an object");
    JsonElement w = d.get("weights");
    need(w == null || (Json.isString(w) && WEIGHTS_MODES.contains(w.getAsString())),
        "manifest weights " + Json.pyRepr(w) + " is not one of " + Json.pyTuple(WEIGHTS_MODES));
    JsonElement dt = d.get("dtype");
    need(dt == null || (Json.isString(dt) && DTYPES.contains(dt.getAsString())),
        "manifest dtype " + Json.pyRepr(dt) + " is not one of " + Json.pyTuple(DTYPES));
    JsonElement inEl = d.get("input");
    need(inEl.isJsonObject(), "manifest 'input' must be an object");
    JsonObject in = inEl.getAsJsonObject();
    noUnknown(in, INPUT_KEYS, "manifest input");
    for (String key : new String[] {"mean", "std"}) {
      JsonElement a = in.get(key);
      boolean ok = a != null && a.isJsonArray() && a.getAsJsonArray().size() == 3;
      if (ok) for (JsonElement x : a.getAsJsonArray()) ok &= Json.isNum(x);
      need(ok, "manifest input." + key + " must be 3 numbers");
    }
    for (JsonElement x : in.getAsJsonArray("std")) {
      need(x.getAsDouble() > 0, "manifest input.std must be positive");
    }
    JsonElement crop = in.get("crop_pct");
    need(crop == null || (Json.isNum(crop) && crop.getAsDouble() > 0 && crop.getAsDouble() <= 1),
        "manifest input.crop_pct must be in (0, 1]");
    JsonElement layout = in.get("layout");
    need(layout == null || (Json.isString(layout) && LAYOUTS.contains(layout.getAsString())),
        "manifest input.layout must be one of " + LAYOUTS);
    JsonElement scale = in.get("scale");
    need(scale == null || (Json.isNum(scale) && scale.getAsDouble() > 0),
        "manifest input.scale must be a positive number");
    JsonElement names = d.get("class_names");
    boolean namesOk = names.isJsonArray() && names.getAsJsonArray().size() > 0;
    if (namesOk) for (JsonElement x : names.getAsJsonArray()) namesOk &= Json.isString(x);
    need(namesOk, "manifest class_names must be a non-empty list of strings");
    JsonElement entriesEl = d.get("entries");
    need(entriesEl.isJsonArray() && entriesEl.getAsJsonArray().size() > 0,
        "manifest entries must be a non-empty list");
    Set<Integer> seenR = new HashSet<Integer>();
    Set<String> seenE = new HashSet<String>();
    List<Integer> rs = new ArrayList<Integer>();
    int index = 0;
    for (JsonElement x : entriesEl.getAsJsonArray()) {
      need(x.isJsonObject(), "manifest entries[" + index + "] must be an object");
      noUnknown(x.getAsJsonObject(), ENTRY_KEYS, "manifest entries[" + index + "]");
      index++;
      boolean ok = x.isJsonObject() && Json.isInt(x.getAsJsonObject().get("resolution"))
          && x.getAsJsonObject().get("resolution").getAsInt() > 0;
      need(ok, "each manifest entry needs a positive integer 'resolution'");
      JsonObject e = x.getAsJsonObject();
      need(Json.isString(e.get("entry")) && !e.get("entry").getAsString().isEmpty(),
          "each manifest entry needs an 'entry' name");
      int r = e.get("resolution").getAsInt();
      String name = e.get("entry").getAsString();
      need(!seenR.contains(r), "resolution " + r + " listed twice");
      need(!seenE.contains(name), "entry point " + name + " listed twice");
      seenR.add(r);
      seenE.add(name);
      rs.add(r);
    }
    for (int i = 1; i < rs.size(); i++) {
      need(rs.get(i - 1) > rs.get(i), "manifest entries must be ordered highest resolution first");
    }
    JsonElement def = d.get("default_resolution");
    need(Json.isInt(def) && seenR.contains(def.getAsInt()),
        "default_resolution " + Json.repr(def) + " is not one of the entries " + rs);
    JsonElement pol = d.get("policy");
    need(pol == null || pol.isJsonNull() || pol.isJsonObject(), "manifest policy must be an object");
  }

  // ----------------------------------------------------------------------------- queries
  public int[] resolutions() {
    int[] out = new int[entries.size()];
    for (int i = 0; i < out.length; i++) out[i] = entries.get(i).resolution;
    return out;
  }

  public Entry entryFor(int resolution) {
    for (Entry e : entries) if (e.resolution == resolution) return e;
    throw new ManifestException(
        "resolution " + resolution + " is not served by this artifact (it has "
            + Arrays.toString(resolutions()) + ")");
  }

  /** The artifact file name recorded at conversion ("rs_mbv2.pte"), or null. */
  public String artifactFile() {
    JsonElement f = artifact.get("file");
    return Json.isString(f) ? f.getAsString() : null;
  }

  /** The artifact sha256 recorded at conversion, or null. */
  public String artifactSha256() {
    JsonElement f = artifact.get("sha256");
    return Json.isString(f) ? f.getAsString() : null;
  }

  // ----------------------------------------------------------------------------- helpers
  private static float[] floats(JsonArray a) {
    float[] out = new float[a.size()];
    for (int i = 0; i < out.length; i++) out[i] = a.get(i).getAsFloat();
    return out;
  }

  private static String strOr(JsonObject o, String key, String dflt) {
    JsonElement e = o.get(key);
    return Json.isString(e) ? e.getAsString() : dflt;
  }

  private static JsonObject objOrEmpty(JsonObject o, String key) {
    JsonElement e = o.get(key);
    return e != null && e.isJsonObject() ? e.getAsJsonObject() : new JsonObject();
  }

  /** Refuse the first key of {@code o} not in {@code known}, naming it and where (as Python does). */
  private static void noUnknown(JsonObject o, List<String> known, String where) {
    for (java.util.Map.Entry<String, JsonElement> kv : o.entrySet()) {
      String k = kv.getKey();
      if (!known.contains(k)) {
        StringBuilder sb = new StringBuilder();
        for (String n : known) sb.append(sb.length() > 0 ? ", " : "").append(n);
        throw new ManifestException(
            where + " has unknown key " + Json.pyStr(k) + " (known: " + sb + ")");
      }
    }
  }

  private static void need(boolean cond, String msg) {
    if (!cond) throw new ManifestException(msg);
  }
}
