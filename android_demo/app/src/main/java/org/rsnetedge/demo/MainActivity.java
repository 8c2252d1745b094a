package org.rsnetedge.demo;

import android.Manifest.permission;
import android.content.pm.PackageManager;
import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import android.os.Build;
import android.os.Bundle;
import android.os.Debug;
import android.os.Handler;
import android.os.Looper;
import android.util.Log;
import android.view.View;
import android.widget.AdapterView;
import android.widget.ArrayAdapter;
import android.widget.CheckBox;
import android.widget.ImageView;
import android.widget.SeekBar;
import android.widget.Spinner;
import android.widget.TextView;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContracts;
import androidx.appcompat.app.AppCompatActivity;
import androidx.camera.core.CameraSelector;
import androidx.camera.core.ImageAnalysis;
import androidx.camera.core.ImageProxy;
import androidx.camera.core.Preview;
import androidx.camera.lifecycle.ProcessCameraProvider;
import androidx.camera.view.PreviewView;
import androidx.core.content.ContextCompat;
import com.google.common.util.concurrent.ListenableFuture;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import org.rsnetedge.core.ArtifactFiles;
import org.rsnetedge.core.Manifest;
import org.rsnetedge.core.ResolutionController;
import org.rsnetedge.core.RunningStats;
import org.rsnetedge.core.TopK;

/**
 * Thin Android layer: turns battery / thermal ({@link DeviceSignals}) and UI events into calls on
 * the pure-Java {@link ResolutionController} and runs the entry point it names on camera frames
 * (CameraX) or, without camera permission, on the bundled sample images. {@link ModelRunner} keeps
 * one program resident by default (lean) and loads another when the resolution changes; the screen
 * ({@link StatusText}) shows what is loaded and the native heap.
 */
public class MainActivity extends AppCompatActivity {
  private static final String TAG = "RsnetDemo";
  static final String SAMPLES_DIR = "samples";
  private static final long SAMPLE_PERIOD_MS = 500;
  private static final int STATS_WINDOW = 50;

  private final ExecutorService worker = Executors.newSingleThreadExecutor();
  private final Handler main = new Handler(Looper.getMainLooper());
  private final AtomicBoolean busy = new AtomicBoolean(false);
  private final Map<Integer, RunningStats> stats = new HashMap<>();

  private Manifest manifest;
  private ResolutionController controller;
  private volatile ModelRunner runner;
  private volatile String loadError;

  private final List<Frames.Pixels> samples = new ArrayList<>();
  private final List<Bitmap> sampleBitmaps = new ArrayList<>();
  private int sampleIndex;
  private boolean cameraOn;
  private long frames;
  private ModelRunner.Result lastResult;
  private List<TopK.Prediction> lastTop = new ArrayList<>();

  private TextView resolutionView;
  private TextView statusView;
  private TextView labelsView;
  private ImageView sampleView;
  private PreviewView previewView;
  private SeekBar slider;
  private CheckBox simulate;

  private DeviceSignals signals;

  private final ActivityResultLauncher<String> cameraPermission =
      registerForActivityResult(
          new ActivityResultContracts.RequestPermission(),
          granted -> {
            if (granted) startCamera();
            else startSamples();
          });

  private final Runnable sampleTick =
      new Runnable() {
        @Override
        public void run() {
          if (!cameraOn && !samples.isEmpty()) {
            Frames.Pixels p = samples.get(sampleIndex);
            sampleView.setImageBitmap(sampleBitmaps.get(sampleIndex));
            sampleIndex = (sampleIndex + 1) % samples.size();
            submit(p);
          }
          main.postDelayed(this, SAMPLE_PERIOD_MS);
        }
      };

  // ---------------------------------------------------------------------------- lifecycle
  @Override
  protected void onCreate(Bundle savedInstanceState) {
    super.onCreate(savedInstanceState);
    setContentView(R.layout.activity_main);
    resolutionView = findViewById(R.id.resolution);
    statusView = findViewById(R.id.status);
    labelsView = findViewById(R.id.labels);
    sampleView = findViewById(R.id.sample);
    previewView = findViewById(R.id.preview);
    slider = findViewById(R.id.battery_slider);
    simulate = findViewById(R.id.simulate);

    String manifestAsset = "*" + ArtifactFiles.MANIFEST_SUFFIX;
    try {
      manifestAsset = ArtifactFiles.pickManifest(getAssets().list(""));
      manifest = Manifest.fromJson(readAsset(manifestAsset));
    } catch (IOException | RuntimeException e) {
      loadError = "cannot read assets/" + manifestAsset + ": " + e.getMessage()
          + "\nRun android_demo/copy_assets.sh ARTIFACT and rebuild.";
      render();
      return;
    }
    controller = new ResolutionController(manifest);
    setUpOverrideSpinner();
    setUpSimulation();
    loadSamples();

    signals = new DeviceSignals(this, controller, this::render);
    signals.start();

    int first = controller.resolution(); // lean: the program of this entry is loaded first
    worker.execute(
        () -> {
          try {
            ModelRunner r = ModelRunner.load(this, manifest, first);
            runner = r;
          } catch (IOException | RuntimeException e) {
            Log.e(TAG, "model load failed", e);
            loadError = "cannot load the model: " + e.getMessage();
          }
          runOnUiThread(this::render);
        });

    if (ContextCompat.checkSelfPermission(this, permission.CAMERA)
        == PackageManager.PERMISSION_GRANTED) {
      startCamera();
    } else {
      cameraPermission.launch(permission.CAMERA);
    }
    render();
  }

  @Override
  protected void onResume() {
    super.onResume();
    main.removeCallbacks(sampleTick);
    main.post(sampleTick);
  }

  @Override
  protected void onPause() {
    main.removeCallbacks(sampleTick);
    super.onPause();
  }

  @Override
  protected void onDestroy() {
    main.removeCallbacks(sampleTick);
    if (signals != null) signals.stop();
    worker.execute(
        () -> {
          ModelRunner r = runner;
          runner = null;
          if (r != null) r.close();
        });
    worker.shutdown();
    super.onDestroy();
  }

  // ---------------------------------------------------------------------------- UI inputs
  private void setUpOverrideSpinner() {
    Spinner spinner = findViewById(R.id.override);
    List<String> items = new ArrayList<>();
    items.add(getString(R.string.auto));
    final int[] rs = manifest.resolutions();
    for (int r : rs) items.add(r + " px (" + manifest.entryFor(r).entry + ")");
    ArrayAdapter<String> adapter =
        new ArrayAdapter<>(this, android.R.layout.simple_spinner_item, items);
    adapter.setDropDownViewResource(android.R.layout.simple_spinner_dropdown_item);
    spinner.setAdapter(adapter);
    spinner.setOnItemSelectedListener(
        new AdapterView.OnItemSelectedListener() {
          @Override
          public void onItemSelected(AdapterView<?> parent, View view, int pos, long id) {
            controller.onOverride(pos == 0 ? null : rs[pos - 1]);
            render();
          }

          @Override
          public void onNothingSelected(AdapterView<?> parent) {
            controller.onOverride(null);
            render();
          }
        });
  }

  private void setUpSimulation() {
    simulate.setOnCheckedChangeListener(
        (button, checked) -> {
          slider.setEnabled(checked);
          controller.onSimulatedBattery(checked ? (double) slider.getProgress() : null);
          render();
        });
    slider.setOnSeekBarChangeListener(
        new SeekBar.OnSeekBarChangeListener() {
          @Override
          public void onProgressChanged(SeekBar bar, int progress, boolean fromUser) {
            if (simulate.isChecked()) {
              controller.onSimulatedBattery((double) progress);
              render();
            }
          }

          @Override
          public void onStartTrackingTouch(SeekBar bar) {}

          @Override
          public void onStopTrackingTouch(SeekBar bar) {}
        });
  }

  // ------------------------------------------------------------------------------ frames
  private void loadSamples() {
    try {
      String[] names = getAssets().list(SAMPLES_DIR);
      if (names == null) return;
      java.util.Arrays.sort(names);
      for (String n : names) {
        String lower = n.toLowerCase(Locale.US);
        if (!(lower.endsWith(".jpg") || lower.endsWith(".jpeg") || lower.endsWith(".png"))) continue;
        try (InputStream in = getAssets().open(SAMPLES_DIR + "/" + n)) {
          Bitmap bmp = BitmapFactory.decodeStream(in);
          if (bmp == null) continue;
          Bitmap argb = bmp.copy(Bitmap.Config.ARGB_8888, false);
          sampleBitmaps.add(argb);
          samples.add(Frames.fromBitmap(argb));
        }
      }
    } catch (IOException e) {
      Log.w(TAG, "cannot list sample images", e);
    }
  }

  private void startSamples() {
    cameraOn = false;
    previewView.setVisibility(View.GONE);
    sampleView.setVisibility(View.VISIBLE);
    render();
  }

  private void startCamera() {
    ListenableFuture<ProcessCameraProvider> future = ProcessCameraProvider.getInstance(this);
    future.addListener(
        () -> {
          try {
            ProcessCameraProvider provider = future.get();
            Preview preview = new Preview.Builder().build();
            preview.setSurfaceProvider(previewView.getSurfaceProvider());
            ImageAnalysis analysis =
                new ImageAnalysis.Builder()
                    .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                    .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                    .build();
            analysis.setAnalyzer(worker, this::analyze);
            provider.unbindAll();
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis);
            cameraOn = true;
            previewView.setVisibility(View.VISIBLE);
            sampleView.setVisibility(View.GONE);
          } catch (Exception e) {
            Log.w(TAG, "camera unavailable, using sample images", e);
            startSamples();
          }
          render();
        },
        ContextCompat.getMainExecutor(this));
  }

  /** CameraX analyzer, on the worker thread. */
  private void analyze(ImageProxy image) {
    try {
      if (runner != null) infer(Frames.fromRgbaImage(image));
    } finally {
      image.close();
    }
  }

  /** Queue one sample image unless an inference is still running. */
  private void submit(Frames.Pixels p) {
    if (runner == null || !busy.compareAndSet(false, true)) return;
    worker.execute(
        () -> {
          try {
            infer(p);
          } finally {
            busy.set(false);
          }
        });
  }

  /** On the worker thread: run the entry point the controller names now. */
  private void infer(Frames.Pixels p) {
    ModelRunner r = runner;
    if (r == null) return;
    int res = controller.resolution();
    try {
      ModelRunner.Result out = r.run(p.argb, p.width, p.height, res);
      List<TopK.Prediction> top = TopK.top(out.logits, manifest.classNames, 3);
      synchronized (stats) {
        RunningStats s = stats.get(res);
        if (s == null) {
          s = new RunningStats(STATS_WINDOW);
          stats.put(res, s);
        }
        s.add(out.latencyMs);
        lastResult = out;
        lastTop = top;
        frames++;
      }
    } catch (RuntimeException e) {
      Log.e(TAG, "inference failed at " + res, e);
      loadError = "inference failed at " + res + ": " + e.getMessage();
    }
    runOnUiThread(this::render);
  }

  // ------------------------------------------------------------------------------ screen
  private void render() {
    if (manifest == null || controller == null) {
      resolutionView.setText(getString(R.string.app_name));
      statusView.setText(loadError != null ? loadError : "");
      return;
    }
    int res = controller.resolution();
    String entry = controller.entryName();
    Integer override = controller.override();
    resolutionView.setText(
        String.format(Locale.US, "%d px  %s%s", res, entry, override != null ? "  (manual)" : ""));

    double last;
    double median;
    long n;
    ModelRunner.Result lr;
    List<TopK.Prediction> top;
    synchronized (stats) {
      RunningStats s = stats.get(res);
      last = s == null ? Double.NaN : s.last();
      median = s == null ? Double.NaN : s.median();
      n = frames;
      lr = lastResult;
      top = lastTop;
    }
    String source = cameraOn ? "camera" : (samples.isEmpty() ? "nothing (no samples in assets)" : "sample images");
    ModelRunner r = runner;
    StringBuilder sb = new StringBuilder(StatusText.status(controller,
        Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q, new StatusText.Latency(last, median, n, source),
        r == null ? null : r.memory(), Debug.getNativeHeapAllocatedSize()));
    if (runner == null && loadError == null) sb.append(getString(R.string.waiting)).append('\n');
    if (loadError != null) sb.append(loadError).append('\n');
    statusView.setText(sb.toString());

    StringBuilder lb = new StringBuilder();
    if (lr != null) lb.append("top-3 (").append(lr.method).append(")\n");
    for (TopK.Prediction p : top) lb.append("  ").append(p).append('\n');
    labelsView.setText(lb.toString());
  }

  private String readAsset(String name) throws IOException {
    try (InputStream in = getAssets().open(name)) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buf = new byte[8192];
      int k;
      while ((k = in.read(buf)) > 0) out.write(buf, 0, k);
      return new String(out.toByteArray(), StandardCharsets.UTF_8);
    }
  }
}
