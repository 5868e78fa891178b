//! Windows' stand-in for mode 0600 and 0700: a protected DACL with one entry, full access for
//! the user running ikd-field, and nothing inherited from the folder above (which on a shared
//! `C:\ikd` or a USB stick formatted NTFS may let every user of the laptop read). Folders under
//! `%LOCALAPPDATA%` are private to their user already; this covers a `--data-dir` elsewhere.
//!
//! The files are opened with sharing off until their DACL is set ([`prepare`]), so nobody else
//! can open them in between. File systems without ACLs (FAT32 and exFAT sticks) refuse to keep
//! one; that is let pass, as mode 0600 silently is on a FAT mount on Linux.
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_INVALID_FUNCTION, ERROR_NOT_SUPPORTED, ERROR_SUCCESS, HANDLE,
};
use windows_sys::Win32::Security::Authorization::{
    SE_FILE_OBJECT, SetNamedSecurityInfoW, SetSecurityInfo,
};
use windows_sys::Win32::Security::{
    ACCESS_ALLOWED_ACE, ACE_FLAGS, ACL, ACL_REVISION, AddAccessAllowedAceEx, CONTAINER_INHERIT_ACE,
    DACL_SECURITY_INFORMATION, GetLengthSid, GetTokenInformation, InitializeAcl,
    OBJECT_INHERIT_ACE, PROTECTED_DACL_SECURITY_INFORMATION, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::{FILE_ALL_ACCESS, FILE_GENERIC_WRITE, WRITE_DAC};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// Makes `opts` open a file that nobody else can open meanwhile (no sharing), with the right to
/// change its DACL ([`restrict`]) besides writing.
pub fn prepare(opts: &mut OpenOptions) {
    opts.share_mode(0)
        .access_mode(FILE_GENERIC_WRITE | WRITE_DAC);
}

/// Leaves the current user alone in the DACL of the file `f` (opened after [`prepare`]).
pub fn restrict(f: &File) -> io::Result<()> {
    let acl = owner_acl(0)?;
    // SAFETY: a file handle we own for the call; `acl` is a well-formed ACL that outlives it;
    // null owner, group and SACL mean "leave them as they are".
    let rc = unsafe {
        SetSecurityInfo(
            f.as_raw_handle() as HANDLE,
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            acl.as_ptr(),
            std::ptr::null(),
        )
    };
    checked(rc)
}

/// Leaves the current user alone in the DACL of the folder `dir`, inherited by what is made in
/// it afterwards (SQLite's journal files among them).
pub fn restrict_dir(dir: &Path) -> io::Result<()> {
    let acl = owner_acl(OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE)?;
    let wide = wide_nul(dir.as_os_str())?;
    // SAFETY: `wide` is a NUL-terminated UTF-16 path and `acl` a well-formed ACL, both alive
    // for the call.
    let rc = unsafe {
        SetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            acl.as_ptr(),
            std::ptr::null(),
        )
    };
    checked(rc)
}

fn checked(rc: u32) -> io::Result<()> {
    match rc {
        ERROR_SUCCESS | ERROR_NOT_SUPPORTED | ERROR_INVALID_FUNCTION => Ok(()),
        e => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

/// An ACL (in u32s, for its alignment) with one entry: full access for the current user.
struct OwnerAcl(Vec<u32>);

impl OwnerAcl {
    fn as_ptr(&self) -> *const ACL {
        self.0.as_ptr().cast()
    }
}

fn owner_acl(flags: ACE_FLAGS) -> io::Result<OwnerAcl> {
    let user = current_user()?;
    let sid = user.sid();
    // SAFETY: `sid` points into `user`'s buffer, a valid SID as the token gave it.
    let sid_len = unsafe { GetLengthSid(sid) } as usize;
    let len = size_of::<ACL>() + size_of::<ACCESS_ALLOWED_ACE>() - size_of::<u32>() + sid_len;
    let mut buf = vec![0u32; len.div_ceil(4)];
    let acl = buf.as_mut_ptr().cast::<ACL>();
    // SAFETY: `buf` holds `len` bytes, 4-aligned, for the ACL and its one entry.
    let ok = unsafe {
        InitializeAcl(acl, len as u32, ACL_REVISION) != 0
            && AddAccessAllowedAceEx(acl, ACL_REVISION, flags, FILE_ALL_ACCESS, sid) != 0
    };
    if !ok {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnerAcl(buf))
}

/// The process token's TOKEN_USER (the SID lives in the same buffer).
struct TokenUserBuf(Vec<u64>);

impl TokenUserBuf {
    fn sid(&self) -> *mut std::ffi::c_void {
        // SAFETY: the buffer starts with the TOKEN_USER that GetTokenInformation wrote.
        unsafe { (*self.0.as_ptr().cast::<TOKEN_USER>()).User.Sid }
    }
}

fn current_user() -> io::Result<TokenUserBuf> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of our own process; `token` receives a handle we close below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut needed = 0u32;
    // SAFETY: asking for the size only (null buffer, length 0).
    unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut needed) };
    let mut buf = vec![0u64; (needed as usize).div_ceil(8).max(1)];
    // SAFETY: `buf` holds at least `needed` bytes, 8-aligned.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenUser,
            buf.as_mut_ptr().cast(),
            (buf.len() * 8) as u32,
            &mut needed,
        )
    } != 0;
    let err = io::Error::last_os_error();
    // SAFETY: the token handle opened above, closed once.
    unsafe { CloseHandle(token) };
    if ok { Ok(TokenUserBuf(buf)) } else { Err(err) }
}

/// `s` in UTF-16 with a closing NUL, as the wide Windows functions take it.
fn wide_nul(s: &std::ffi::OsStr) -> io::Result<Vec<u16>> {
    use std::os::windows::ffi::OsStrExt;
    let mut w: Vec<u16> = s.encode_wide().collect();
    if w.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"));
    }
    w.push(0);
    Ok(w)
}
